package router

import "github.com/ai-ninja/pgninja/parser"

// Decide applies the routing policy (issue 4, section 2) to one query
// string. It chooses a Target and Reason only; Router.Route then picks the
// backend and applies health and read-your-writes. The rules, first match
// wins:
//
//  1. An unknown hint value is an error (SQLSTATE 22023).
//  2. Inside a transaction already placed: the transaction's backend.
//  3. A pinned session: its pinned backend.
//  4. /* pgninja:primary|replica */ at the start of the text.
//  5. SET pgninja.route = 'primary'|'replica' for the session.
//  6. standard_conforming_strings = off: primary (the classifier cannot
//     trust its own reading of the text).
//  7. Parse errors: primary, where PostgreSQL reports them.
//  8. Starting a transaction (BEGIN, or the first statement of a
//     transaction whose BEGIN the proxy deferred): the primary if it is
//     SERIALIZABLE (a hot standby refuses those), else a replica if the
//     transaction is read-only (BEGIN READ ONLY, SET TRANSACTION READ ONLY,
//     default_transaction_read_only) and takes no advisory lock as it
//     opens, else the primary.
//  9. Statements that pin the session (LISTEN, temp tables, session
//     advisory locks, WITH HOLD cursors, SET ROLE, session set_config):
//     primary.
//  10. By kind: writes, DDL, utility, session commands and unknown
//     statements go to the primary; reads go to the primary if they lock
//     rows, call volatile/unknown functions or run under
//     default_transaction_isolation = serializable, else to a replica.
//
// Hints deliberately beat rules 6-10, writes included: a client that asks
// for a replica gets one, and PostgreSQL rejects a write there itself.
func Decide(c *parser.Classification, s *SessionState) Decision {
	if c.HintErr != nil {
		return Decision{Target: Primary, Reason: ReasonInvalidHint, Err: c.HintErr}
	}
	if s.InTxn && s.TxnBound {
		return Decision{Target: s.TxnTarget, Backend: s.TxnBackend, Reason: s.TxnReason}
	}
	if s.Pinned {
		return Decision{Target: s.PinnedTarget, Backend: s.PinnedBackend, Reason: ReasonSessionPin}
	}
	switch c.Hint {
	case parser.HintPrimary:
		return Decision{Target: Primary, Reason: ReasonHintPrimary}
	case parser.HintReplica:
		return Decision{Target: Replica, Reason: ReasonHintReplica}
	}
	switch s.RouteHint {
	case parser.HintPrimary:
		return Decision{Target: Primary, Reason: ReasonSessionHint}
	case parser.HintReplica:
		return Decision{Target: Replica, Reason: ReasonSessionHint}
	}
	if s.NonStandardStrings {
		return Decision{Target: Primary, Reason: ReasonNonstdString}
	}
	if c.ParseError != nil {
		return Decision{Target: Primary, Reason: ReasonParseError}
	}
	if c.Kind == parser.TxnBegin || s.InTxn {
		return startTxn(c, s)
	}
	if c.Pins&pinning != 0 {
		return Decision{Target: Primary, Reason: ReasonSessionPin}
	}
	switch c.Kind {
	case parser.Read:
		switch {
		case c.Locking:
			return Decision{Target: Primary, Reason: ReasonLocking}
		case c.VolatileFunc:
			return Decision{Target: Primary, Reason: ReasonVolatile}
		case s.DefaultSerializable:
			return Decision{Target: Primary, Reason: ReasonSerializable}
		}
		return Decision{Target: Replica, Reason: ReasonReplicaRead}
	case parser.Write:
		return Decision{Target: Primary, Reason: ReasonWrite}
	case parser.DDL:
		return Decision{Target: Primary, Reason: ReasonDDL}
	case parser.Utility:
		return Decision{Target: Primary, Reason: ReasonUtility}
	case parser.Set, parser.SetLocal, parser.TxnCommit, parser.TxnRollback, parser.TxnOther:
		return Decision{Target: Primary, Reason: ReasonSession}
	}
	return Decision{Target: Primary, Reason: ReasonUnknown}
}

// startTxn places a transaction that is being opened. The whole
// transaction follows this decision, so only its declared access mode
// counts: a read-only transaction cannot write wherever it runs.
func startTxn(c *parser.Classification, s *SessionState) Decision {
	level := s.TxnIsolation
	if c.TxnIsolation != "" {
		level = c.TxnIsolation
	}
	if level == "serializable" || level == "" && s.DefaultSerializable {
		return Decision{Target: Primary, Reason: ReasonSerializable}
	}
	mode := s.TxnReadOnly
	if c.TxnReadOnly != parser.AccessUnspecified {
		mode = c.TxnReadOnly
	}
	if mode == parser.ReadOnly || (mode == parser.AccessUnspecified && s.DefaultReadOnly) {
		if c.AdvisoryLock {
			// A lock taken on a replica excludes no one on the primary.
			return Decision{Target: Primary, Reason: ReasonAdvisoryLock}
		}
		return Decision{Target: Replica, Reason: ReasonReadOnlyTxn}
	}
	return Decision{Target: Primary, Reason: ReasonExplicitTxn}
}
