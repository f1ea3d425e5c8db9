// Package pitr adds point-in-time recovery to the logical backups:
// continuous WAL archiving with pg_receivewal (supervised, on a replication
// slot so the server keeps WAL until it is archived), physical base backups
// with pg_basebackup, and PrepareRestore, which lays out a data directory
// that recovers to a target time when PostgreSQL starts on it.
//
// Everything stored is sealed like the logical backups (zstd, then chunked
// AES-256-GCM). pg_receivewal writes plaintext segments into a local
// directory; the archiver seals each completed segment into the store and
// deletes the local copy. With a slot and an empty directory pg_receivewal
// (15+) resumes from the slot's position, so nothing is lost across
// restarts.
//
// Store layout:
//
//	base/<id>/base.tar.zst.enc   pg_basebackup -Ft -X fetch, sealed
//	base/<id>/manifest.json      start/end times, start LSN, timeline
//	wal/<segment>.zst.enc        one archived WAL segment (or .history file)
package pitr
