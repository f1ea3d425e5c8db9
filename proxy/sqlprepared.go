package proxy

import (
	"encoding/binary"
	"hash/fnv"

	"github.com/ai-ninja/pgninja/internal/pgerr"
	"github.com/ai-ninja/pgninja/parser"
)

// SQL-level prepared statements (PREPARE, EXECUTE, DEALLOCATE) and the
// commands that drop every statement (DEALLOCATE ALL, DISCARD ALL), as
// they reach the proxy in a simple query (buildQuery) or through Parse,
// Bind and Execute, as psycopg 3 sends its own DEALLOCATE ALL after a
// ROLLBACK (boundSQLStatements).

// sqlPins are the statements that act on SQL prepared statements.
const sqlPins = parser.PinPrepare | parser.PinExecute | parser.PinDeallocate

// newSQLStmt names a PREPARE by its text and the settings it is read
// under, as for a Parse (see parseSettings).
func (s *Session) newSQLStmt(text string) *sqlStmt {
	h := fnv.New64a()
	h.Write(binary.BigEndian.AppendUint64(nil, s.params.parseHash.Load()))
	h.Write([]byte(text))
	return &sqlStmt{text: text, hash: h.Sum64()}
}

// prepareSQL records the client's PREPARE of name, to run on st, where
// another client's statement of that name is deallocated first. A name
// the client already uses is refused, as PostgreSQL refuses it: PREPARE
// and Parse share one namespace.
func (s *Session) prepareSQL(b *batch, st *serverState, name, text string) (*sqlStmt, *pgerr.Error) {
	if s.stmt(name) != nil || s.sqlStmt(name) != nil {
		return nil, pgerr.New(pgerr.DuplicatePrepared, "prepared statement %q already exists", name)
	}
	if _, ok := st.sqlHash(name); ok {
		b.inject("DEALLOCATE " + quoteIdent(name))
	}
	ps := s.newSQLStmt(text)
	if s.sqlStmts == nil {
		s.sqlStmts = map[string]*sqlStmt{}
	}
	s.sqlStmts[name] = ps
	st.setSQL(name, ps.hash)
	return ps, nil
}

// asRun is c, or for an EXECUTE of a statement the client PREPAREd (in a
// simple query or through Parse), how that statement classifies.
func (s *Session) asRun(c *parser.Classification) *parser.Classification {
	if c.Pins.Has(parser.PinExecute) && c.Kind == parser.Utility && !c.MultiStatement {
		if ran := s.executing(c); ran != nil {
			return ran
		}
	}
	return c
}

// executing classifies an EXECUTE as the statement it runs, so that
// routing, pinning and the tracking of written tables see what runs
// (parser.Classifier.Executing). It returns nil when the proxy does not
// know what the client prepared under that name: the EXECUTE then counts
// as a utility statement, which goes to the primary and may write.
//
// The PREPARE is classified again by its text, which the classifier has
// cached, so that a reload of function volatility reaches it.
func (s *Session) executing(exec *parser.Classification) *parser.Classification {
	if s.sqlOpaque {
		return nil
	}
	ps := s.sqlStmt(exec.StatementName)
	if ps == nil {
		return nil
	}
	prep := s.classifier.Classify(ps.text)
	if prep.Prepared == nil {
		return nil
	}
	if ps.ran == nil || ps.exec != exec || ps.prep != prep {
		ps.ran, ps.exec, ps.prep = s.classifier.Executing(exec, prep.Prepared), exec, prep
	}
	return ps.ran
}

// syncSQLStmt makes the server connection hold the client's SQL statement
// name, or none of that name when the client has none.
func (s *Session) syncSQLStmt(b *batch, st *serverState, name string) {
	ps := s.sqlStmt(name)
	h, onServer := st.sqlHash(name)
	if ps != nil && onServer && h == ps.hash || ps == nil && !onServer {
		return
	}
	if onServer {
		b.inject("DEALLOCATE " + quoteIdent(name))
		st.forgetSQL(name)
	}
	if ps != nil {
		b.inject(ps.text)
		st.setSQL(name, ps.hash)
	}
}

// syncSQL makes the server connection hold exactly the client's SQL
// statements, for a string whose statements are not followed one by one.
func (s *Session) syncSQL(b *batch, st *serverState) {
	for name := range st.sqlNames() {
		s.syncSQLStmt(b, st, name)
	}
	for name := range s.sqlStmts {
		s.syncSQLStmt(b, st, name)
	}
}

// deallocatesProtocolStmt reports whether a DEALLOCATE names a statement
// the client prepared with Parse rather than PREPARE. In a failed
// transaction it is left to the server to refuse.
func (s *Session) deallocatesProtocolStmt(class *parser.Classification) bool {
	name := class.StatementName
	if name == "" || class.MultiStatement || s.sqlStmt(name) != nil || s.stmt(name) == nil {
		return false
	}
	return s.lastTxStatus() != 'E'
}

// deallocateAll records a DEALLOCATE ALL: the server drops every named
// statement on st, the shared copies of other clients' statements too, and
// the client has none left. The unnamed statement stays.
func (s *Session) deallocateAll(st *serverState) {
	s.stmts, s.sqlStmts = nil, nil
	st.forgetAll()
}

// discardAll records a DISCARD ALL, which also resets every setting and
// ends the session state that pins.
func (s *Session) discardAll(b *batch, st *serverState) {
	s.deallocateAll(st)
	st.params, st.paramsHash = map[string]string{}, emptyParamsHash
	b.sets = append(b.sets, parser.SetParam{ResetAll: true})
	s.mu.Lock()
	s.pinned = 0
	clear(s.holdCursors)
	s.roleSet, s.authSet = false, false
	s.rs.Unpin()
	s.mu.Unlock()
	s.sqlOpaque = false
}

// boundSQLStatements does for a statement bound to run (a Bind) what
// buildQuery does for one in a simple query: without it a DEALLOCATE ALL
// or DISCARD ALL sent this way left the proxy believing the connection
// still held the statements every client shares there, and a PREPARE
// went untracked, so that another client's statement of the name ran in
// its place. A Parse holds one statement only, so there is no string of
// several to follow.
func (s *Session) boundSQLStatements(b *batch, st *serverState, class *parser.Classification, text string) {
	discard := isDiscardAll(class)
	if class.Pins&sqlPins == 0 && !discard || class.MultiStatement || s.sqlOpaque {
		return
	}
	s.mu.Lock()
	status := s.txStatus
	continued := len(s.pending) > 0 && s.pending[len(s.pending)-1].open
	s.mu.Unlock()
	// The server refuses everything but the transaction's end in a
	// failed transaction. In a batch already partly sent, a query the
	// proxy placed first would land in its middle.
	if status == 'E' || continued {
		return
	}
	name := class.StatementName
	switch {
	case discard:
		// It succeeds only outside a transaction block and as the
		// first statement since the last Sync.
		if status == 'I' && !b.plan.executedSinceSync() {
			s.discardAll(b, st)
		}
	case class.Pins.Has(parser.PinPrepare):
		ps, err := s.prepareSQL(b, st, name, text)
		if err != nil {
			s.refuseInBatch(b, err)
			return
		}
		b.prep, b.prepName = ps, name
	case class.Pins.Has(parser.PinDeallocate) && name == "":
		s.deallocateAll(st)
	case class.Pins.Has(parser.PinDeallocate) && s.deallocatesProtocolStmt(class):
		// The client's statement lives on the server under another
		// name: a stand-in of the client's name lets the server's
		// DEALLOCATE answer as it would have.
		delete(s.stmts, name)
		if _, ok := st.sqlHash(name); ok {
			b.inject("DEALLOCATE " + quoteIdent(name))
			st.forgetSQL(name)
		}
		b.inject("PREPARE " + quoteIdent(name) + " AS SELECT")
	case class.Pins&(parser.PinExecute|parser.PinDeallocate) != 0:
		s.syncSQLStmt(b, st, name)
		if class.Pins.Has(parser.PinDeallocate) {
			delete(s.sqlStmts, name)
			st.forgetSQL(name)
		}
	}
}
