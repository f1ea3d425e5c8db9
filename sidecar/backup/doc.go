// Package backup takes, lists, verifies, restores and prunes pgninja's
// logical backups.
//
// A backup is `pg_dump -Fc` (uncompressed, so zstd does the compressing,
// faster and smaller than pg_dump's gzip) streamed through zstd, the
// chunked AES-256-GCM of package sealed and SHA-256 into the store, never
// whole in memory. It is taken from a replica by default, inside a snapshot
// exported by pgninja's own transaction, so the per-table row counts and
// content checksums recorded in the manifest describe exactly the rows in
// the dump. The manifest is signed with a key derived from the backup key.
//
// Verification restores the backup into a scratch database on the
// primary's server and compares every table's count and checksum with the
// manifest: pgBackRest checks checksums, we also prove the dump restores.
//
// Objects (under the store root):
//
//	dumps/<id>/data.dump.zst.enc   the sealed, compressed dump
//	dumps/<id>/manifest.json       signed manifest; written last, so a
//	                               backup without one does not exist
//	dumps/<id>/verify.json         outcome of the latest verification
package backup
