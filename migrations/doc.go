// Package migrations holds AI Answer Ninja's schema as versioned SQL files,
// embedded in the pgninja binary and applied with goose:
//
//	00001 base schema: users, smart_whitelists, spam_profiles,
//	      user_spam_interactions, user_configs
//	00002 call_records and conversations, range-partitioned by month, each
//	      with a DEFAULT partition (monthly partitions are created by the
//	      sidecar's partition manager, relative to today)
//	00003 dashboard materialized views and refresh_dashboard_stats()
//	00004 set_updated_at() declared STABLE: it writes no table
//
// Every file has a Down section, so `pgninja migrate down` steps back one
// version at a time. Concurrent `migrate up` runs are serialized by goose's
// Postgres session lock.
package migrations
