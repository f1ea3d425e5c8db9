package proxy

import (
	"bytes"
	"encoding/binary"
	"strings"

	"github.com/ai-ninja/pgninja/internal/pgerr"
	"github.com/ai-ninja/pgninja/internal/wire"
	"github.com/ai-ninja/pgninja/parser"
	"github.com/ai-ninja/pgninja/pool"
	"github.com/ai-ninja/pgninja/router"
)

// pinning lists the features that tie a client to its server connection
// in transaction mode. PREPARE/EXECUTE/DEALLOCATE do not: the proxy
// replays SQL prepared statements where they are missing.
const pinning = parser.PinListen | parser.PinTempTable | parser.PinAdvisoryLock |
	parser.PinHoldCursor | parser.PinRole | parser.PinSetConfig

// batch is a request rewritten for one server connection.
type batch struct {
	out []byte
	// pre holds whole queries the proxy places before the client's
	// request (see inject); injected counts them, each owed one
	// ReadyForQuery the client must not see.
	pre      []byte
	injected int
	// begins: how many of the injected queries, first of all, open the
	// client's held-back transaction (see takeBegin).
	begins int
	plan   *plan
	// sets are the session settings the request changes if it commits.
	sets []parser.SetParam
	// rollback: the request ends its transaction by rolling back.
	rollback bool
	// ddl: the request changes the schema, so function volatility is
	// read again afterwards.
	ddl bool
	// pins are the session state the request makes that ties the client
	// to the connection, if it succeeds (see Session.pin); releases are
	// the pins whose state it ends (see Session.unpin).
	pins, releases parser.Pins
	// held and closed are the cursors the request opens WITH HOLD and
	// closes by name (see Session.noteCursors).
	held, closed []string
	// onReplica: the request runs on a replica (see lockOnReplica).
	onReplica bool
	// boundPortal is the portal the batch's last Bind made, from the
	// client's named statement bound (see buildDescribe).
	boundPortal string
	bound       *clientStmt
	// unnamed is the hash of the client's unnamed statement when this
	// batch parsed it and nothing since (a Query, a stand-in Parse) may
	// have replaced it; a Sync only ever ends a batch. Only then may a Bind or Describe of
	// the unnamed statement go without a Parse of its own: across
	// batches the server's unnamed statement may be anyone's, since any
	// simple query, pooled or the proxy's own, replaces it.
	unnamed uint64
	// prep is a SQL PREPARE just bound, for the Execute that runs it
	// (see boundSQLStatements).
	prep     *sqlStmt
	prepName string
}

// takePlan returns the spare plan, or a new one; s.mu is held, since the
// relay gives back the plans it is done with (see readyForQuery).
func (s *Session) takePlan() *plan {
	p := s.sparePlan
	if p == nil {
		p = new(plan)
	}
	s.sparePlan = nil
	return p.reuse()
}

// build rewrites the collected request for server connection c: client
// statement names become server-side names, statements c lacks are
// prepared first, a Close of a named statement is answered without
// touching the server's shared copy, and session-state statements are
// tracked. It runs only where server connections change hands.
func (s *Session) build(c *pool.Conn) *batch {
	st := stateOf(c, s.st.cfg.Pool.MaxPreparedStatements)
	s.mu.Lock()
	onReplica := s.leaseDecision.Target == router.Replica
	begin, begins := s.takeBegin()
	p := s.takePlan()
	s.mu.Unlock()
	b := &s.batch
	*b = batch{out: s.out[:0], plan: p, onReplica: onReplica}
	if begin != nil {
		// First of all: whatever else the proxy places before the
		// request belongs in the client's transaction.
		b.pre = begin
		b.injected, b.begins = begins, begins
	}
	s.parsedNow = s.parsedNow[:0]
	for _, name := range st.takeEvicted() {
		b.out = appendRenamed(b.out, 'C', []byte{'S'}, name, nil)
		b.plan.add(op{kind: opClose, swallow: true})
	}
	req := s.req
	for len(req) >= 5 {
		typ := req[0]
		n := int(binary.BigEndian.Uint32(req[1:5])) + 1
		msg, body := req[:n], req[5:n]
		req = req[n:]
		switch typ {
		case 'P':
			s.buildParse(b, st, msg, body)
		case 'B':
			portal, rest, ok := nameField(body)
			stmt, rest2, ok2 := nameField(rest)
			if !ok || !ok2 {
				b.out = append(b.out, msg...)
			} else {
				cs := s.ensureStmt(b, st, stmt)
				if cs != nil {
					class := s.asRun(s.classOf(cs))
					if err := s.refusedHere(b, st, class); err != nil {
						// The server skips the Bind, after the refusal.
						s.refuseInBatch(b, err)
					} else {
						s.noteEffects(b, class)
						s.boundSQLStatements(b, st, class, cs.query)
					}
				}
				b.boundPortal, b.bound = portal, cs
				if cs != nil && cs.server != "" {
					b.out = appendRenamed(b.out, 'B', append([]byte(portal), 0), cs.server, rest2)
				} else {
					b.out = append(b.out, msg...)
				}
			}
			b.plan.add(op{kind: opBind})
		case 'D':
			b.plan.add(op{kind: opDescribe, shapeOf: s.buildDescribe(b, st, msg, body)})
		case 'C':
			s.buildClose(b, st, msg, body)
			b.plan.add(op{kind: opClose})
		case 'E':
			b.out = append(b.out, msg...)
			b.plan.add(op{kind: opExecute, st: st, prep: b.prep, prepName: b.prepName})
			b.prep, b.prepName = nil, ""
		case 'S':
			b.out = append(b.out, msg...)
			b.plan.add(op{kind: opSync})
		case 'Q':
			b.unnamed = 0
			b.plan.add(s.buildQuery(b, st, msg, body))
		case 'F':
			s.stampSequences(st)
			b.out = append(b.out, msg...)
			b.plan.add(op{kind: opFunc})
		default: // Flush
			b.out = append(b.out, msg...)
		}
	}
	if len(b.pre) > 0 {
		b.out = append(b.pre, b.out...)
	}
	s.out = b.out
	return b
}

// inject places query before the client's request, whatever the request
// holds: its answer then precedes all of the request's answers.
func (b *batch) inject(query string) {
	b.pre = appendQuery(b.pre, query)
	b.injected++
}

// unnamedAgain returns the client's unnamed statement when the Parse body
// defines it again, byte for byte, and nil otherwise.
func (s *Session) unnamedAgain(body []byte) *clientStmt {
	if cs := s.unnamed; cs != nil && len(body) > 0 && body[0] == 0 && bytes.Equal(cs.parse[5:], body) {
		return cs
	}
	return nil
}

func (s *Session) buildParse(b *batch, st *serverState, msg, body []byte) {
	if cs := s.unnamedAgain(body); cs != nil {
		// The unnamed statement again, as drivers send it for each
		// query: no new hash or copies.
		b.unnamed = cs.hash
		b.out = append(b.out, msg...)
		b.plan.add(op{kind: opParse})
		return
	}
	name, query, types, ok := parseMsg(body)
	if !ok {
		b.out = append(b.out, msg...)
		b.plan.add(op{kind: opParse})
		return
	}
	cs := newClientStmt(name, query, types, s.epoch.Load(), s.params.parseHash.Load())
	if name == "" {
		s.unnamed = cs
		b.unnamed = cs.hash
		b.out = append(b.out, msg...)
		b.plan.add(op{kind: opParse})
		return
	}
	if s.stmt(name) != nil || s.sqlStmt(name) != nil {
		s.refuseInBatch(b, pgerr.New(pgerr.DuplicatePrepared, "prepared statement %q already exists", name))
		return
	}
	if s.stmts == nil {
		s.stmts = map[string]*clientStmt{}
	}
	s.stmts[name] = cs
	s.parsedNow = append(s.parsedNow, name)
	if st.has(cs.server) {
		// The connection has it already: answer in order with a
		// ParseComplete from a harmless stand-in.
		b.out = append(b.out, emptyParse...)
		b.unnamed = 0
		b.plan.add(op{kind: opParse, cs: cs})
		return
	}
	st.preparing(cs.server)
	b.out = append(b.out, cs.parse...)
	b.plan.add(op{kind: opParse, stmt: cs.server, st: st, cs: cs})
}

// refuseInBatch answers a message the way PostgreSQL would have, with err: a
// Parse of a name the client already uses (42P05, keeping the statement it
// has), a Bind or Describe of a name it never prepared (26000, where the
// server might have another client's statement of that name). The server
// must fail in the same place, so that it skips the rest of the batch to
// Sync: it gets a Parse that cannot succeed, and the client gets err in
// place of the server's error.
func (s *Session) refuseInBatch(b *batch, err *pgerr.Error) {
	msg := wire.Append(nil, pgerr.Response(err))
	b.out = append(b.out, refusedParse...)
	b.plan.add(op{kind: opParse, refusal: msg[5:]})
}

// ensureStmt makes sure the statement a Bind or Describe names exists on
// the connection, preparing it first when not. It returns the client's
// statement, or nil when the client has no such Parse'd statement: the
// name is then left to the server if the client PREPAREd it in SQL, and
// refused otherwise.
func (s *Session) ensureStmt(b *batch, st *serverState, name string) *clientStmt {
	if name == "" {
		cs := s.unnamed
		switch {
		case cs == nil:
			// The client has no unnamed statement, but the server may
			// hold another client's: drop it, so the server answers
			// as it would have answered this client alone.
			b.out = append(b.out, closeUnnamed...)
			b.plan.add(op{kind: opClose, swallow: true})
		case b.unnamed != cs.hash:
			b.out = append(b.out, cs.parse...)
			b.plan.add(op{kind: opParse, swallow: true})
			b.unnamed = cs.hash
		}
		return cs
	}
	cs := s.stmt(name)
	if cs != nil && cs.changed.Load() {
		err := pgerr.New(pgerr.FeatureNotSupported, "cached plan must not change result type")
		// asyncpg prepares the statement again on this error, which it
		// tells by the routine that raises it.
		err.Routine = "RevalidateCachedQuery"
		s.refuseInBatch(b, err)
		return nil
	}
	if cs == nil {
		switch {
		case s.sqlOpaque || s.lastTxStatus() == 'E':
		case s.sqlStmt(name) == nil:
			s.refuseInBatch(b, pgerr.New(pgerr.InvalidSQLStatementName, "prepared statement %q does not exist", name))
		default:
			s.syncSQLStmt(b, st, name)
		}
		return nil
	}
	if !st.has(cs.server) {
		st.preparing(cs.server)
		b.out = append(b.out, cs.parse...)
		b.plan.add(op{kind: opParse, swallow: true, stmt: cs.server, st: st})
	}
	return cs
}

// buildDescribe renames a Describe of a client's statement; it returns
// the named statement described, whose result shape the answer shows. A
// Describe of the portal just bound from a named statement shows that
// statement's shape too: drivers such as pgjdbc learn their columns so,
// and bind the statement without describing it again.
func (s *Session) buildDescribe(b *batch, st *serverState, msg, body []byte) *clientStmt {
	if len(body) >= 2 && body[0] == 'P' {
		b.out = append(b.out, msg...)
		// Compared as bytes, which costs no allocation per Describe.
		if i := bytes.IndexByte(body[1:], 0); i >= 0 && b.bound != nil && b.bound.server != "" && string(body[1:1+i]) == b.boundPortal {
			return b.bound
		}
		return nil
	}
	if len(body) < 2 || body[0] != 'S' {
		b.out = append(b.out, msg...)
		return nil
	}
	name, rest, ok := nameField(body[1:])
	if !ok {
		b.out = append(b.out, msg...)
		return nil
	}
	if cs := s.ensureStmt(b, st, name); cs != nil && cs.server != "" {
		b.out = appendRenamed(b.out, 'D', []byte{'S'}, cs.server, rest)
		return cs
	}
	b.out = append(b.out, msg...)
	return nil
}

func (s *Session) buildClose(b *batch, st *serverState, msg, body []byte) {
	if len(body) < 2 || body[0] != 'S' {
		b.out = append(b.out, msg...)
		return
	}
	name, _, ok := nameField(body[1:])
	if !ok || name == "" {
		if ok {
			s.unnamed = nil
			b.unnamed = 0
		}
		b.out = append(b.out, msg...)
		return
	}
	// The server's copy may serve other clients; the LRU closes it later.
	delete(s.stmts, name)
	b.out = appendRenamed(b.out, 'C', []byte{'S'}, noopStatement, nil)
}

// buildQuery tracks a simple query's effects on session state. SQL
// prepared statements live on every server connection the client uses as
// if it had only the one: those it lacks are prepared first, and another
// client's of the same name are deallocated first, so that EXECUTE and
// DEALLOCATE meet what PostgreSQL would have held for this client. It
// returns the query's op, with the ErrorResponse body the client gets in
// place of the server's answer when the proxy refuses the query itself.
func (s *Session) buildQuery(b *batch, st *serverState, msg, body []byte) op {
	o := op{kind: opQuery, st: st}
	class := s.classifyQuery(body)
	query := s.memoQuery // in the request's buffer: copied where it is kept
	if err := s.refusedHere(b, st, class); err != nil {
		o.refusal = s.refuseQuery(b, err)
		return o
	}
	s.noteEffects(b, class)
	switch {
	case class.Pins&sqlPins != 0 && (s.sqlOpaque || s.lastTxStatus() == 'E'):
		// The server refuses everything but the transaction's end in
		// a failed transaction, and holds for an opaque client just
		// what it prepared.
	case class.Pins&sqlPins != 0 && class.MultiStatement:
		s.syncSQL(b, st)
		if class.Pins&(parser.PinPrepare|parser.PinDeallocate) != 0 {
			// Which statements the string leaves is known only to the
			// server: the client keeps this connection, which is
			// reset when it leaves.
			s.sqlOpaque = true
			s.mu.Lock()
			s.pin(parser.PinPrepare)
			s.mu.Unlock()
		}
	case class.Pins.Has(parser.PinPrepare):
		ps, err := s.prepareSQL(b, st, class.StatementName, strings.Clone(query))
		if err != nil {
			o.refusal = s.refuseQuery(b, err)
			return o
		}
		o.prep, o.prepName = ps, class.StatementName
	case class.Pins.Has(parser.PinDeallocate) && s.deallocatesProtocolStmt(class):
		// PREPARE and Parse share one namespace, but a Parse'd statement
		// lives on the servers under another name, shared with other
		// clients: forget the client's name, and let the server run a
		// DEALLOCATE of its own so the client gets the answer it expects.
		delete(s.stmts, class.StatementName)
		b.inject("PREPARE " + noopStatement + " AS SELECT")
		b.out = appendQuery(b.out, "DEALLOCATE "+noopStatement)
		return o
	case class.Pins.Has(parser.PinExecute) || (class.Pins.Has(parser.PinDeallocate) && class.StatementName != ""):
		name := class.StatementName
		s.syncSQLStmt(b, st, name)
		if class.Pins.Has(parser.PinDeallocate) {
			delete(s.sqlStmts, name)
			st.forgetSQL(name)
		}
	case class.Pins.Has(parser.PinDeallocate):
		s.deallocateAll(st)
		s.unnamed = nil
	case isDiscardAll(class) && !class.MultiStatement && s.lastTxStatus() == 'I':
		// Only a DISCARD ALL that runs alone outside a transaction
		// block succeeds; anywhere else the server refuses it with
		// 25001 and keeps everything.
		s.discardAll(b, st)
		s.unnamed = nil
	}
	b.out = append(b.out, msg...)
	return o
}

// refusedHere is the proxy's own refusal of a statement about to run on
// st, if any.
func (s *Session) refusedHere(b *batch, st *serverState, class *parser.Classification) *pgerr.Error {
	if err := lockOnReplica(b, class); err != nil {
		return err
	}
	return s.sequencesHere(st, class)
}

// lockOnReplica refuses an advisory lock in a request that runs on a
// replica: the read-only transaction it is part of, or the replica the
// client is pinned to. The replica would grant it, yet it would exclude
// no one who takes the same lock on the primary, so the critical section
// it guards would not be one. A transaction whose first statement takes
// the lock goes to the primary instead (router.ReasonAdvisoryLock; a lone
// BEGIN waits for that statement, see deferbegin.go).
func lockOnReplica(b *batch, class *parser.Classification) *pgerr.Error {
	if !b.onReplica || class == nil || !class.AdvisoryLock {
		return nil
	}
	return pgerr.New(pgerr.ReadOnlySQLTransaction, "pgninja: an advisory lock taken on a replica would exclude no one on the primary").
		WithDetail("This request runs on a replica: it is part of a read-only transaction, or its client is pinned to the replica.").
		WithHint("Take the lock as the transaction's first statement, or open the transaction with " +
			"/* pgninja:primary */ BEGIN READ ONLY; either runs it on the primary.")
}

// refuseQuery answers a simple query the way PostgreSQL would have, with
// err. The server gets a query that fails without side effects in its
// place, so that a transaction block is aborted as the real error would
// abort it, and the client gets err in place of the server's error.
func (s *Session) refuseQuery(b *batch, err *pgerr.Error) []byte {
	b.out = appendQuery(b.out, refusedQuery)
	return wire.Append(nil, pgerr.Response(err))[5:]
}

// refusedQuery fails with a syntax error, touching nothing.
const refusedQuery = "pgninja refused"

func (s *Session) lastTxStatus() byte {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.txStatus
}

func isDiscardAll(c *parser.Classification) bool {
	return c.Kind == parser.Utility && strings.HasPrefix(strings.ToUpper(strings.TrimSpace(c.Normalized)), "DISCARD ALL")
}

// noteEffects records what a statement about to run does to the session.
func (s *Session) noteEffects(b *batch, class *parser.Classification) {
	if class == nil {
		return
	}
	b.pins |= class.Pins & pinning
	b.releases |= class.Releases &^ class.Pins
	if len(class.HoldCursors)+len(class.ClosedCursors)+len(class.SetParams) > 0 {
		// Rare; the appends' write barriers are not free for every query.
		b.held = append(b.held, class.HoldCursors...)
		b.closed = append(b.closed, class.ClosedCursors...)
		for _, sp := range class.SetParams {
			if !sp.Local {
				b.sets = append(b.sets, sp)
			}
		}
	}
	for _, k := range class.StatementKinds {
		switch k {
		case parser.TxnRollback:
			b.rollback = true
		case parser.DDL:
			b.ddl = true
		}
	}
}

// unpin lets the client go from its server connection once nothing it
// pinned for is left there: UNLISTEN *, pg_advisory_unlock_all(),
// DISCARD TEMP and CLOSE ALL end all of their kind of state. The caller
// holds s.mu, and only calls it for a request that succeeded outside any
// transaction with nothing sent behind it, so that neither a rollback nor
// a pipelined LISTEN can bring the state back unseen.
func (s *Session) unpin(p parser.Pins) {
	if s.pinned&p == 0 {
		return
	}
	s.pinned &^= p
	if s.pinned == 0 {
		// The router's pin ends with the proxy's: with it left in place
		// the client's statements went to that server for good, its
		// writes to a replica it was pinned to in a read-only
		// transaction.
		s.rs.Unpin()
		s.srv.log.Debug("client unpinned from its server connection", "user", s.l.user.Name, "released", p.String())
	}
}

// noteRole follows the role a client set for its session (SET ROLE, SET
// SESSION AUTHORIZATION), which pins it, for a request that succeeded;
// outside is whether the request ran outside any transaction, so that
// no rollback can bring the role back. It reports PinRole once such a
// request has reset both, as applications that switch roles per request
// do (SET ROLE tenant ... RESET ROLE): the connection is then as any
// other's, and the client need not hold it. A reset inside a transaction
// counts for nothing, while a SET counts wherever it ran. The caller
// holds s.mu.
func (s *Session) noteRole(e *expect, outside bool) parser.Pins {
	reset := false
	for _, sp := range e.sets {
		var set *bool
		switch sp.Name {
		case "role":
			set = &s.roleSet
		case "session_authorization":
			set = &s.authSet
		default:
			continue
		}
		switch {
		case sp.Reset || sp.Name == "role" && len(sp.Values) == 1 && strings.EqualFold(sp.Values[0], "none"):
			if outside {
				*set, reset = false, true
			}
		case !sp.FromCurrent:
			*set = true
		}
	}
	if reset && !s.roleSet && !s.authSet {
		return parser.PinRole
	}
	return 0
}

// noteCursors follows the cursors the client holds open past their
// transaction (DECLARE ... WITH HOLD), which pin it, for a request that
// succeeded. It reports PinHoldCursor once CLOSE has closed the last of
// them by name (CLOSE ALL releases them all; see unpin). The caller holds
// s.mu.
func (s *Session) noteCursors(e *expect) parser.Pins {
	if e.releases.Has(parser.PinHoldCursor) {
		clear(s.holdCursors)
	}
	for _, name := range e.held {
		if s.holdCursors == nil {
			s.holdCursors = map[string]bool{}
		}
		s.holdCursors[name] = true
	}
	closed := false
	for _, name := range e.closed {
		if s.holdCursors[name] {
			delete(s.holdCursors, name)
			closed = true
		}
	}
	if closed && len(s.holdCursors) == 0 {
		return parser.PinHoldCursor
	}
	return 0
}

// pin ties the client to its server connection for session state that
// cannot be moved. The caller holds s.mu: the relay pins at the
// ReadyForQuery of a request that made such state and succeeded, in the
// same critical section that decides whether to release the connection.
// A request that failed made nothing: a CREATE TEMP TABLE refused in a
// read-only transaction on a replica no longer keeps the client on the
// replica, where its writes would fail.
func (s *Session) pin(p parser.Pins) {
	if p == 0 || s.pinned&p == p {
		return
	}
	first := s.pinned == 0
	s.pinned |= p
	if first {
		s.srv.metrics.pinned.WithLabelValues(pinLabel(p)).Inc()
		s.srv.log.Debug("client pinned to its server connection", "user", s.l.user.Name, "feature", p.String())
	}
}

func pinLabel(p parser.Pins) string {
	for bit := parser.Pins(1); bit != 0; bit <<= 1 {
		if p&bit != 0 {
			return bit.String()
		}
	}
	return "unknown"
}
