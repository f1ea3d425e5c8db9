// Package proxy is pgninja's client side: it accepts PostgreSQL clients,
// authenticates them, and runs one Session per client.
//
// A Session reads client messages into a request until a boundary (Query,
// Sync, Flush, FunctionCall), leases a server connection from the pool and
// forwards the request. The relay copies the server's answer back,
// decoding only ReadyForQuery: in transaction and statement mode on the
// session's own goroutine until the answer is complete, and on a goroutine
// of its own while a lease outlasts its answers (session mode, an open
// transaction, a pinned client, COPY). Bodies are copied between buffered
// streams by their 5-byte header and never decoded otherwise.
//
// The one rule for giving a server connection back (the safe point): the
// server's last ReadyForQuery said idle, every Sync/Query sent has been
// answered, and nothing has been sent since the last one. Session mode
// never releases before the client leaves; transaction mode releases at
// every safe point.
//
// A client of the database pgninja (or pgbouncer) listed in admin_users or
// stats_users gets the admin console instead (console.go): SHOW POOLS and
// the rest of PgBouncer's commands, answered by the proxy itself.
package proxy
