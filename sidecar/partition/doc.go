// Package partition keeps range-partitioned tables in shape, as pg_partman
// does: it creates the current and Premake future partitions, applies
// retention (detach, or drop with an optional verified archive first),
// reports and optionally moves rows that landed in the DEFAULT partition,
// and reports health (missing future partitions, sizes).
//
// All boundaries are in UTC: day, ISO week (Monday) or calendar month. Time
// comes from Manager.Now so tests can move the clock. Every change is made
// under a session-level pg_advisory_lock on the primary, so two pgninja
// instances running the job at once take turns, and the second one finds
// nothing left to do. Plans are computed from the catalog each time, which
// makes runs idempotent.
package partition
