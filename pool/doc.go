// Package pool keeps open PostgreSQL server connections, one Pool per
// (backend, database, user), and lends them out.
//
// Connections are opened with pgconn, so TLS and SCRAM/md5 towards the
// server come from pgx, then hijacked: from then on the proxy speaks raw
// protocol messages on them. A Pool has a maximum size, a FIFO queue of
// waiters with a timeout (53300 when it stays full), idle and lifetime
// limits, a liveness check for connections that sat idle, and an optional
// reset query run when a session gives its connection back.
package pool
