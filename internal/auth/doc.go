// Package auth checks client credentials the way PostgreSQL does:
// SCRAM-SHA-256 (via github.com/xdg-go/scram), md5 or trust.
//
// Secrets come from a PgBouncer-style users file (`"user" "secret"`, the
// secret a SCRAM verifier, an md5 hash or a plain password) or from the
// config. The exchange itself is written against a small Conn interface so
// the proxy supplies the wire and this package supplies the checks.
package auth
