// Package pgerr carries errors with a PostgreSQL SQLSTATE through pgninja
// and flattens any error into the single ErrorResponse a client sees.
//
// Internally errors stay rich (wrapped causes, server errors from pgconn);
// only at the wire are they reduced to severity, code, message, detail and
// hint. An error with no SQLSTATE of its own becomes 08006 or XX000, never a
// silent disconnect.
package pgerr
