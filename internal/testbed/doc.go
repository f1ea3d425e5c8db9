// Package testbed connects integration tests to the local PostgreSQL and
// Redis test bed started by scripts/testbed.sh.
//
// The test bed is a real PostgreSQL 15 primary, a hot-standby replica that
// streams from it, and a Redis server, all on 127.0.0.1. `make test` starts
// it and exports its coordinates as environment variables:
//
//	PGNINJA_TEST_PRIMARY         host:port of the primary
//	PGNINJA_TEST_REPLICA         host:port of the streaming replica
//	PGNINJA_TEST_REDIS           host:port of Redis
//	PGNINJA_TEST_PGBOUNCER_PORT  port reserved for pgbouncer (bench harness)
//	PGNINJA_TEST_DIR             the test bed's directory (logs, sockets)
//	PGNINJA_TEST_SUPERUSER       PostgreSQL superuser name (postgres)
//	PGNINJA_TEST_SUPERPASS       its password
//	PGNINJA_TEST_PGBIN           directory of the PostgreSQL 15 binaries
//
// To run a single package's tests by hand:
//
//	scripts/testbed.sh up
//	eval "$(scripts/testbed.sh env)"
//	go test ./proxy/ -run TestSomething -v
//
// Every integration test starts with
//
//	env := testbed.Require(t)
//
// which returns the Env, or — when the variables are missing or the primary is
// unreachable — skips the test on a developer machine, but FAILS it when the
// CI environment variable is set, so CI never passes by skipping.
//
// Besides the superuser, the bed has the login role "ninja" (password
// "ninja", CREATEDB) that owns the database "ai_ninja"; see AppUser, AppPass
// and AppDB. Tests that need isolation use Env.CreateDB for a throwaway
// database and Env.WaitReplicaCaughtUp before reading their writes from the
// replica.
package testbed
