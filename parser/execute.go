package parser

import "slices"

// Executing classifies an EXECUTE as the statement it runs: exec is the
// EXECUTE's own classification (a utility statement, with the functions
// its parameters call), and prepared is the Prepared of the PREPARE that
// made the statement. The result has the prepared statement's kind,
// tables, locking and pins, so an EXECUTE of a read may go to a replica,
// one of an INSERT counts as a write of its table, and one that takes a
// session advisory lock pins the session as the statement itself would;
// it keeps the EXECUTE's hint, text and statement name, so statistics
// and the tracking of SQL prepared statements still see an EXECUTE.
//
// The parameters are evaluated in the same statement, so their sequence
// use and volatility join the prepared statement's as if written in it.
func (c *Classifier) Executing(exec, prepared *Classification) *Classification {
	m := *prepared
	m.Hint, m.HintErr = exec.Hint, exec.HintErr
	m.Pins, m.Releases = prepared.Pins|exec.Pins, prepared.Releases|exec.Releases
	m.StatementName = exec.StatementName
	m.Fingerprint, m.Normalized = exec.Fingerprint, exec.Normalized
	m.Functions = union(prepared.Functions, exec.Functions)
	m.ReadTables = union(prepared.ReadTables, exec.ReadTables) // a parameter may be a subquery
	m.Locking = prepared.Locking || exec.Locking
	m.AdvisoryLock = prepared.AdvisoryLock || exec.AdvisoryLock
	vol := c.vol.Load().fn
	m.VolatileFunc = anyVolatile(m.Functions, vol)
	m.Sequences = sequenceUse(prepared.Kind, m.Functions, vol)
	m.UnnamedWrites = prepared.UnnamedWrites || anyUserVolatile(m.Functions, vol)
	m.Prepared, m.literal = nil, false
	return &m
}

// union is a followed by the names of b it lacks, without modifying a,
// which a shared Classification may hold.
func union(a, b []string) []string {
	a = slices.Clip(a)
	for _, n := range b {
		if !slices.Contains(a, n) {
			a = append(a, n)
		}
	}
	return a
}
