// Package pgtool holds what the sidecar's jobs share about talking to
// PostgreSQL: where a server is (Target), how to connect so that row text is
// stable across servers, where the matching pg_dump and pg_restore live, and
// per-table row counts and content checksums.
package pgtool
