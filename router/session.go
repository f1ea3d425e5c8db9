package router

import (
	"strings"

	"github.com/ai-ninja/pgninja/parser"
)

// SessionState is what routing needs to remember about one client. The
// proxy owns one per client connection, reads it in Route and updates it
// with Executed after each query string completes. It is not safe for
// concurrent use (a client's queries are sequential).
type SessionState struct {
	// InTxn: the client is inside a transaction block (ReadyForQuery
	// status 'T' or 'E').
	InTxn bool `json:"in_txn,omitempty"`
	// TxnBound: the open transaction already runs on TxnBackend. False
	// while InTxn only if the proxy deferred BEGIN to the first statement.
	TxnBound   bool   `json:"txn_bound,omitempty"`
	TxnTarget  Target `json:"txn_target,omitempty"`
	TxnBackend string `json:"txn_backend,omitempty"`
	TxnReason  Reason `json:"txn_reason,omitempty"`
	// TxnReadOnly is the access mode the open transaction declared.
	TxnReadOnly parser.AccessMode `json:"txn_read_only,omitempty"`
	// TxnIsolation is the isolation level the open transaction declared.
	TxnIsolation string `json:"txn_isolation,omitempty"`

	// RouteHint comes from SET pgninja.route; HintNone and HintAuto both
	// mean "use the policy".
	RouteHint parser.Hint `json:"route_hint,omitempty"`
	// DefaultReadOnly mirrors default_transaction_read_only: every
	// transaction the client opens is read-only unless it says otherwise.
	DefaultReadOnly bool `json:"default_read_only,omitempty"`
	// DefaultSerializable mirrors default_transaction_isolation =
	// serializable: every transaction the client opens is serializable
	// unless it says otherwise, and a hot standby refuses those.
	DefaultSerializable bool `json:"default_serializable,omitempty"`
	// NonStandardStrings mirrors standard_conforming_strings = off. The
	// classifier lexes strings the standard way, so such a client's
	// statements all go to the primary.
	NonStandardStrings bool `json:"nonstandard_strings,omitempty"`

	// Pinned: the session holds server-side state (temp table, LISTEN,
	// session advisory lock, WITH HOLD cursor, SET ROLE, a session
	// set_config), so its statements stay on PinnedBackend until the proxy
	// calls Unpin.
	Pinned        bool   `json:"pinned,omitempty"`
	PinnedTarget  Target `json:"pinned_target,omitempty"`
	PinnedBackend string `json:"pinned_backend,omitempty"`

	// LastCommitLSN is the primary's WAL insert position right after this
	// client's last committed write: its reads need a replica that has
	// replayed at least this far.
	LastCommitLSN LSN `json:"last_commit_lsn,omitempty"`
	// ClientKey, when set, also shares read-your-writes positions through
	// LSNTracker between connections of the same logical client (e.g. an
	// application's pool); empty keeps them per connection.
	ClientKey string `json:"client_key,omitempty"`

	txnWrote  bool
	txnFailed bool
	txnSchema bool
	txnTables []string

	// startup holds the defaults the client's startup packet set, which
	// RESET returns to.
	startup sessionDefaults
}

// sessionDefaults are the routing-relevant settings a session starts with.
type sessionDefaults struct {
	route                          parser.Hint
	readOnly, serializable, nonStd bool
}

// ApplyStartup takes the client's startup settings (lower-cased names, as
// sent or from -c in options) as the session's defaults, as PostgreSQL
// does: pgninja.route, default_transaction_read_only,
// default_transaction_isolation and standard_conforming_strings act from
// the first statement, and RESET returns to them. An unknown pgninja.route value is a *parser.HintError
// (22023).
func (s *SessionState) ApplyStartup(params map[string]string) error {
	if v, ok := params[parser.RouteParam]; ok {
		h, err := parser.ParseHint(strings.TrimSpace(v), parser.HintSourceSet)
		if err != nil {
			return err
		}
		s.startup.route = h
	}
	if v, ok := params["default_transaction_read_only"]; ok {
		s.startup.readOnly = gucBool([]string{v})
	}
	if v, ok := params["default_transaction_isolation"]; ok {
		s.startup.serializable = serializable([]string{v})
	}
	if v, ok := params["standard_conforming_strings"]; ok {
		s.startup.nonStd = !gucBool([]string{v})
	}
	s.RouteHint, s.DefaultReadOnly, s.NonStandardStrings = s.startup.route, s.startup.readOnly, s.startup.nonStd
	s.DefaultSerializable = s.startup.serializable
	return nil
}

// Outcome is how the server finished a query string.
type Outcome struct {
	// TxStatus is ReadyForQuery's status byte: 'I' idle, 'T' in a
	// transaction, 'E' in a failed transaction.
	TxStatus byte
	// Failed: the server returned an ErrorResponse.
	Failed bool
	// Pins is the session state the statements that ran made. It is not
	// read off the query string's classification: a Parse and Describe
	// alone name a statement without running it.
	Pins parser.Pins
}

// Commit tells the proxy that writes may have just become durable on the
// primary. It should then read the primary's WAL insert position
// and pass it to SessionState.Committed and LSNTracker.NoteCommit.
type Commit struct {
	Needed bool
	// Tables written, for per-table tracking; AnyTable among them when
	// the text does not name every table it may write.
	Tables []string
	// Schema: the commit changed the schema (DDL), which every client's
	// reads wait for (LSNTracker.NoteSchema).
	Schema bool
}

// pinning are the Pins that tie a session to its server connection. A SQL
// PREPARE does not: the proxy prepares the statement again on whichever
// connection runs its EXECUTE.
const pinning = parser.PinListen | parser.PinTempTable | parser.PinAdvisoryLock |
	parser.PinHoldCursor | parser.PinRole | parser.PinSetConfig

// Executed folds the effects of a completed query string into the state.
// c and d are what Classify and Route returned for it.
func (s *SessionState) Executed(c *parser.Classification, d Decision, out Outcome) Commit {
	if !out.Failed {
		s.applySettings(c)
		if out.Pins&pinning != 0 && !s.Pinned {
			s.Pinned, s.PinnedTarget, s.PinnedBackend = true, d.Target, d.Backend
		}
	}
	wrote := d.Target == Primary && c.MayWrite()
	schema := wrote && c.Kind == parser.DDL && !onlyTemp(c)

	if out.TxStatus == 'T' || out.TxStatus == 'E' {
		if !s.InTxn || !s.TxnBound {
			s.InTxn, s.TxnBound = true, true
			s.TxnTarget, s.TxnBackend, s.TxnReason = d.Target, d.Backend, txnReason(d)
		}
		if c.TxnReadOnly != parser.AccessUnspecified {
			s.TxnReadOnly = c.TxnReadOnly
		}
		if c.TxnIsolation != "" {
			s.TxnIsolation = c.TxnIsolation
		}
		if wrote {
			s.txnWrote = true
			s.txnSchema = s.txnSchema || schema
			s.txnTables = writtenTables(s.txnTables, c)
		}
		s.txnFailed = out.TxStatus == 'E'
		return Commit{}
	}

	// Idle: any transaction is over, by commit, rollback or error.
	commit := Commit{}
	if (s.InTxn && s.txnWrote) || wrote {
		if !onlyEnds(c, s.InTxn && s.txnFailed) {
			commit = Commit{Needed: true, Tables: writtenTables(s.txnTables, c),
				Schema: (s.InTxn && s.txnSchema) || schema}
		}
	}
	s.endTxn()
	return commit
}

// onlyTemp reports whether c is a single statement that creates a
// temporary object: no other session can see it, so it is no schema
// change that their reads should wait for. (Each such wait lasts until
// the next replica poll, and some applications make a temp table per
// request.)
func onlyTemp(c *parser.Classification) bool {
	return c.Pins.Has(parser.PinTempTable) && len(c.StatementKinds) == 1
}

// onlyEnds reports whether c cannot have committed anything: it is nothing
// but ROLLBACKs, or only transaction ends after the transaction had failed
// (where COMMIT means ROLLBACK). Anything else might have committed, and
// recording an LSN that was not needed only makes the next reads stricter.
func onlyEnds(c *parser.Classification, failed bool) bool {
	if len(c.StatementKinds) == 0 {
		return false
	}
	for _, k := range c.StatementKinds {
		switch {
		case k == parser.TxnRollback:
		case k == parser.TxnCommit && failed:
		default:
			return false
		}
	}
	return true
}

func (s *SessionState) endTxn() {
	s.InTxn, s.TxnBound, s.TxnBackend, s.TxnReason = false, false, "", ""
	s.TxnTarget, s.TxnReadOnly, s.TxnIsolation = Primary, parser.AccessUnspecified, ""
	s.txnWrote, s.txnFailed, s.txnSchema, s.txnTables = false, false, false, nil
}

// txnReason is the reason reported for every statement of a transaction
// bound by decision d: hints and read-only mode stay visible, anything else
// on the primary is just an explicit transaction.
func txnReason(d Decision) Reason {
	switch d.Reason {
	case ReasonHintPrimary, ReasonHintReplica, ReasonSessionHint, ReasonReadOnlyTxn, ReasonSerializable, ReasonAdvisoryLock:
		return d.Reason
	}
	if d.Target == Replica {
		return ReasonReadOnlyTxn
	}
	return ReasonExplicitTxn
}

// applySettings tracks the session settings routing depends on. SET LOCAL
// ends with the transaction, so it is ignored; a session SET inside a
// transaction that later rolls back is (rarely) kept — the proxy's
// parameter tracker is the authority for replaying settings.
func (s *SessionState) applySettings(c *parser.Classification) {
	if c.SessionRoute != parser.HintNone {
		s.RouteHint = c.SessionRoute
		if c.RouteReset {
			s.RouteHint = s.startup.route
		}
	}
	for _, p := range c.SetParams {
		if p.Local {
			continue
		}
		switch {
		case p.ResetAll:
			s.DefaultReadOnly, s.NonStandardStrings = s.startup.readOnly, s.startup.nonStd
			s.DefaultSerializable = s.startup.serializable
		case p.Name == "default_transaction_isolation" && p.Reset:
			s.DefaultSerializable = s.startup.serializable
		case p.Name == "default_transaction_isolation":
			s.DefaultSerializable = !p.FromCurrent && serializable(p.Values)
		case p.Name == "default_transaction_read_only" && p.Reset:
			s.DefaultReadOnly = s.startup.readOnly
		case p.Name == "default_transaction_read_only":
			s.DefaultReadOnly = !p.FromCurrent && gucBool(p.Values)
		case p.Name == "standard_conforming_strings" && p.Reset:
			s.NonStandardStrings = s.startup.nonStd
		case p.Name == "standard_conforming_strings":
			s.NonStandardStrings = !p.FromCurrent && !gucBool(p.Values)
		}
	}
}

// serializable reports whether an isolation setting's value is
// serializable.
func serializable(vals []string) bool {
	return len(vals) == 1 && strings.EqualFold(strings.TrimSpace(vals[0]), "serializable")
}

// gucBool parses a boolean setting the way PostgreSQL does (on, true,
// yes, 1 and unambiguous prefixes).
func gucBool(vals []string) bool {
	if len(vals) != 1 {
		return false
	}
	v := strings.ToLower(strings.TrimSpace(vals[0]))
	switch {
	case v == "1", v == "on":
		return true
	case v == "":
		return false
	case strings.HasPrefix("true", v), strings.HasPrefix("yes", v):
		return true
	}
	return false
}

// Committed records the primary's WAL position after this client's
// commit.
func (s *SessionState) Committed(lsn LSN) {
	if lsn > s.LastCommitLSN {
		s.LastCommitLSN = lsn
	}
}

// Unpin releases the session from its pinned backend, once the proxy knows
// its server-side state is gone (DISCARD ALL, reconnect).
func (s *SessionState) Unpin() {
	s.Pinned, s.PinnedTarget, s.PinnedBackend = false, Primary, ""
}

// AnyTable stands, among a commit's tables, for those a write may have
// reached without its text naming them (a procedure, a function that is
// not a built-in: parser.Classification.UnnamedWrites). Under table
// consistency every table's reads wait for it (LSNTracker.Required).
const AnyTable = "*"

// writtenTables adds the tables c may write to dst.
func writtenTables(dst []string, c *parser.Classification) []string {
	dst = appendNew(dst, c.WriteTables)
	if c.UnnamedWrites {
		dst = appendNew(dst, []string{AnyTable})
	}
	return dst
}

func appendNew(dst, names []string) []string {
	for _, n := range names {
		found := false
		for _, d := range dst {
			if d == n {
				found = true
				break
			}
		}
		if !found {
			dst = append(dst, n)
		}
	}
	return dst
}

// DeferredEnded records the end of a transaction whose BEGIN the proxy
// held back and that ended with nothing in it: no server saw it.
func (s *SessionState) DeferredEnded() { s.endTxn() }

// BeginDeferred records a BEGIN the proxy answered itself and holds back
// until the client's next request: the transaction is open, and the
// request that opens it on a server is placed by rule 8 of Decide with
// that request's own statements in view, so a SET TRANSACTION or an
// advisory lock there counts as if it had been in the BEGIN's string.
func (s *SessionState) BeginDeferred(c *parser.Classification) {
	s.endTxn()
	s.InTxn = true
	s.TxnReadOnly, s.TxnIsolation = c.TxnReadOnly, c.TxnIsolation
}
