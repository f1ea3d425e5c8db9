// Package parser classifies SQL text for routing: what kind of statement it
// is, which tables it reads and writes, which functions it calls, and which
// session state (SET, prepared statements, temp tables, advisory locks...) it
// touches.
//
// Classification uses pg_query_go (the real PostgreSQL 16 parser via cgo), but
// a cgo parse costs tens of microseconds, so Classifier first normalizes the
// text in pure Go (literals become $n placeholders, comments and redundant
// whitespace go) and keeps results in an LRU keyed by that normalized text.
// A statement whose classification depends on literal values (SET, EXPLAIN
// with option values) is cached by its exact text instead.
//
// What the text cannot tell comes from the database's catalog, read by the
// proxy and handed over with SetCatalog: each function's volatility, and
// the tables a named relation reaches (a view's tables, the tables a
// partition belongs to, foreign-key cascades, writes by triggers and
// rules).
//
// Results are shared between callers and must be treated as read-only.
// Parse errors are not fatal: the Classification has Kind Unknown and
// ParseError set, and the statement should be passed to PostgreSQL (on the
// primary) so the client gets PostgreSQL's own error.
package parser
