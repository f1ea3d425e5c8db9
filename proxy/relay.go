package proxy

import (
	"slices"
	"time"

	"github.com/ai-ninja/pgninja/config"
	"github.com/ai-ninja/pgninja/internal/pgerr"
	"github.com/ai-ninja/pgninja/internal/wire"
	"github.com/ai-ninja/pgninja/pool"
	"github.com/ai-ninja/pgninja/router"
	"github.com/jackc/pgx/v5/pgproto3"
)

// maxServerMessage bounds what the proxy accepts from a server; PostgreSQL
// itself never sends a message of 1 GB or more.
const maxServerMessage = 1 << 30

// relayJob is one run of relay, for the server's relay workers.
type relayJob struct {
	s *Session
	c *pool.Conn
}

// relay copies the server's messages to the client for as long as the
// session holds c. It is the only reader of c, so it alone sees each
// ReadyForQuery and decides, at the safe point, to give c back.
//
// inline is a relay on the session goroutine (see startRelay). It hands
// over to a relay goroutine, at a message boundary, once the lease is to
// outlive what was sent: at a ReadyForQuery that keeps c with no answer
// still due (a transaction left open, a pinned session), and when the
// server asks for COPY data. An inline relay whose server is lost before
// the client saw any of the answer may give c up and report rerouted: the
// request is then sent again (see reroute.go).
func (s *Session) relay(c *pool.Conn, inline bool) (rerouted bool) {
	var (
		scratch  []byte
		head     expect
		haveHead bool
		sawError bool
		// rows: what the answer's CommandCompletes counted, for
		// query_stats.
		rows       uint64
		clientDead bool
		// capturedLSN is the WAL position an injected read returned.
		capturedLSN router.LSN
		haveLSN     bool
		lastFatal   bool
		// heldReady is a client ReadyForQuery held back until the
		// WAL-position read behind its request has answered (0: none).
		heldReady byte
		// answered: part of the answer reached the client (notices
		// aside), so the request can no longer be re-run elsewhere;
		// unflushed: part of it waits in the client's buffer.
		answered, unflushed bool
	)
	lost := func(err error) bool {
		if heldReady != 0 && s.positionReadLost(c, err, heldReady, clientDead) {
			return false
		}
		if inline && !answered && s.rerouteLost(c, err) {
			return true
		}
		s.serverFailed(c, err, lastFatal)
		return false
	}
	for {
		typ, n, err := wire.ReadHeader(c.R, maxServerMessage)
		if err != nil {
			return lost(err)
		}
		if !haveHead {
			s.mu.Lock()
			if len(s.pending) > 0 {
				head, haveHead = s.pending[0], true
			}
			s.mu.Unlock()
		}
		swallow := haveHead && head.injected
		var refusal []byte
		var shapeOf *clientStmt
		if haveHead && head.plan != nil && !swallow {
			swallow, refusal, shapeOf = head.plan.response(typ)
		}
		if typ == 'E' {
			sawError = true
		}
		if typ == 'C' && head.query != nil && !swallow {
			rows += commandRows(c, n)
		}
		if refusal != nil {
			if err := wire.SkipBody(c.R, n); err != nil {
				return lost(err)
			}
			answered = true
			if !clientDead {
				clientDead = s.forwardSmall(typ, refusal, false) != nil
			}
			continue
		}

		if typ == 'Z' {
			body, err := wire.Body(c.R, n, &scratch)
			if err != nil || len(body) != 1 {
				return lost(err)
			}
			status := body[0]
			c.TxStatus = status
			if head.captureLSN {
				s.mu.Lock()
				if haveLSN {
					s.committedAt(capturedLSN)
				} else {
					s.commitPositionLost()
				}
				s.mu.Unlock()
			}
			// The session's state is settled before the client sees
			// ReadyForQuery: a client that leaves the moment it has its
			// answer then finds its connection idle, so it is reset and
			// reused rather than closed as busy.
			after := s.readyForQuery(c, status, &head, sawError, rows)
			if head.vetDone != nil {
				close(head.vetDone)
			}
			answered = answered || !swallow
			// The ReadyForQuery is buffered, not sent, until c is back
			// in the pool: a client's next request may want c itself
			// (its sequence values are there), and must not find it
			// still lent.
			owed := false
			switch {
			case swallow || after.quiet || clientDead:
			case after.positionNext:
				// A commit's WAL position is known before the client
				// learns of the commit: a read it then sends on another
				// connection (table consistency) must not be routed
				// without it. The read's answer is right behind.
				heldReady = status
			default:
				clientDead = s.forwardSmall(typ, body, false) != nil
				owed = true
			}
			if head.captureLSN && heldReady != 0 {
				if !clientDead {
					clientDead = s.forwardSmall('Z', []byte{heldReady}, false) != nil
					owed = true
				}
				heldReady = 0
			}
			haveHead, sawError, haveLSN, rows = false, false, false, 0
			s.handBack(c, after)
			if owed && !clientDead {
				clientDead = s.flushClient() != nil
			}
			s.afterReady(after)
			if after.release {
				return
			}
			if inline && !s.answersDue() {
				s.srv.relays.Go(relayJob{s, c})
				return
			}
			continue
		}

		if swallow {
			if head.vet != nil && typ != 'Z' {
				if err := s.vetAnswer(c, head.vet, typ, n, &scratch); err != nil {
					return lost(err)
				}
				continue
			}
			if typ == 'D' && head.captureLSN {
				body, err := wire.Body(c.R, n, &scratch)
				if err != nil {
					return lost(err)
				}
				capturedLSN, haveLSN = parseLSNRow(body)
				continue
			}
			if typ == 'E' && (head.begun || head.standIn) {
				// A held-back BEGIN's answer is the client's own. The
				// statement behind one whose transaction failed before
				// reaching a server fails as meant; a FATAL (the server
				// ends the session) goes to the client, as it would
				// have answered the BEGIN itself.
				fatal := isFatalError(c, n)
				body, err := wire.Body(c.R, n, &scratch)
				if err != nil {
					return lost(err)
				}
				if fatal || head.begun {
					lastFatal, answered = true, true
					if !clientDead {
						clientDead = s.forwardSmall(typ, body, true) != nil
					}
				}
				if head.begun && !fatal {
					// deferBegin holds back only BEGINs no server
					// refuses; should one be, the client's statements
					// behind it must not run outside its transaction.
					return lost(errBeginRefused)
				}
				continue
			}
			if typ == 'E' {
				body, err := wire.Body(c.R, n, &scratch)
				if err != nil {
					return lost(err)
				}
				if s.injectedFailed(c, body, clientDead, head.captureLSN) != nil {
					clientDead = true
				}
				continue
			}
			if err := wire.SkipBody(c.R, n); err != nil {
				return lost(err)
			}
			continue
		}
		if typ == 'E' {
			lastFatal = isFatalError(c, n)
			if head.plan != nil && staleStatement(c, n) {
				s.epoch.Add(1)
			}
			if lastFatal && inline && !answered && !clientDead && peekCode(c, n) == pgerr.AdminShutdown && s.mayReroute(c) {
				body, err := wire.Body(c.R, n, &scratch)
				if err != nil {
					return lost(err)
				}
				if s.serverShuttingDown(c) && s.rerouteLost(c, errServerShutdown) {
					return true
				}
				answered = true
				clientDead = s.forwardSmall(typ, body, true) != nil
				continue
			}
		}
		if typ == 'G' {
			s.mu.Lock()
			s.copyingIn = true
			s.copySyncOwed = s.copySyncOwed || head.extended
			s.mu.Unlock()
		}
		if typ == 'S' {
			// Noted even for a client that is gone: the server
			// connection keeps the setting for its next client.
			body, err := wire.Body(c.R, n, &scratch)
			if err != nil {
				return lost(err)
			}
			s.observeParam(body)
			if clientDead {
				continue
			}
			flush := c.R.Buffered() == 0
			clientDead = s.forwardSmall(typ, body, flush) != nil
			unflushed = !flush
			answered = answered || flush
			continue
		}
		if clientDead {
			if err := wire.SkipBody(c.R, n); err != nil {
				return lost(err)
			}
			continue
		}
		// A notice is no part of the answer, and goes out at once, as
		// PostgreSQL sends it; but the warning of a server going away
		// (an immediate shutdown warns each client, with what it had
		// buffered) waits to see whether it does before it gave the
		// answer: then the read runs again and the warning is moot.
		notice := typ == 'N' || typ == 'A'
		hold := inline && !answered && (heldBack(typ) || goingAway(c, typ, n))
		unflushed = unflushed || !notice
		if shapeOf != nil {
			// The shape the client is shown is the one it will rely on
			// when it runs the statement (see vetStatements).
			body, err := wire.Body(c.R, n, &scratch)
			if err != nil {
				return lost(err)
			}
			if b, ok := appendShape(s.shapeBuf[:0], typ, body); ok {
				s.shapeBuf = b
				// A driver describes its statement at every execution
				// (libpq does); the shape is copied only when it changed.
				shape := shapeOf.shape.Load()
				if shape == nil || *shape != string(b) {
					shape = new(string(b))
					shapeOf.shape.Store(shape)
				}
				stateOf(c, s.st.cfg.Pool.MaxPreparedStatements).noteShape(shapeOf.server, *shape)
			}
			flush := !hold && c.R.Buffered() == 0
			clientDead = s.forwardSmall(typ, body, flush) != nil
			if flush {
				answered, unflushed = true, false
			}
			continue
		}
		// An injected request's answer never reaches here (swallow).
		run := relayRun{
			on:        head.plan == nil && runPlain(typ),
			holdable:  inline && !answered,
			countRows: head.query != nil,
		}
		werr, rerr, flushed := s.forward(c, typ, n, hold, &run)
		rows += run.rows
		if flushed {
			answered = answered || unflushed
			unflushed = false
		}
		if rerr != nil {
			return lost(rerr)
		}
		clientDead = werr != nil
		if inline && (typ == 'G' || typ == 'W') {
			// CopyInResponse, CopyBothResponse: the client's data must
			// reach the server while its answer is still due. Nothing
			// else in this response came before (an error would have
			// ended it), so the relay goroutine starts afresh.
			s.srv.relays.Go(relayJob{s, c})
			return
		}
	}
}

// answersDue reports whether requests already sent still await answers.
func (s *Session) answersDue() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.pending) > 0
}

// forward copies one message body from c to the client, flushing when
// the server has nothing more buffered (so one server read becomes one
// client write), unless hold. With run.on, the run of plain messages
// buffered behind it goes in the same write (see relayRun). It returns
// the client-side and server-side errors apart, and whether output may
// have reached the client.
func (s *Session) forward(c *pool.Conn, typ byte, n int, hold bool, run *relayRun) (werr, rerr error, flushed bool) {
	s.c.wmu.Lock()
	defer s.c.wmu.Unlock()
	w := s.c.writer()
	// A message that does not fit what is left of the buffer pushes
	// the buffer out on its way.
	flushed = 5+n > w.Available()
	if err := wire.WriteHeader(w, typ, n); err != nil {
		return err, wire.SkipBody(c.R, n), true
	}
	if run.on && n <= c.R.Buffered() {
		buf, _ := c.R.Peek(c.R.Buffered())
		end := run.runEnd(buf, n)
		flushed = flushed || end > w.Available()
		_, werr = w.Write(buf[:end])
		_, _ = c.R.Discard(end)
		if werr != nil {
			return werr, nil, true
		}
		if run.last != 0 {
			// Once part of the run has been pushed out, the answer is
			// shown, and holding its tail back keeps nothing from the
			// client.
			hold = run.holdable && !flushed && heldBack(run.last)
		}
		n = 0
	}
	for n > 0 {
		avail := c.R.Buffered()
		if avail == 0 {
			if _, err := c.R.Peek(1); err != nil {
				return nil, err, flushed
			}
			avail = c.R.Buffered()
		}
		if avail > n {
			avail = n
		}
		b, _ := c.R.Peek(avail)
		_, werr = w.Write(b)
		_, _ = c.R.Discard(avail)
		n -= avail
		if werr != nil {
			return werr, wire.SkipBody(c.R, n), true
		}
	}
	if c.R.Buffered() == 0 && !hold {
		werr, flushed = s.c.flush(), true
	}
	return werr, nil, flushed
}

func (s *Session) forwardSmall(typ byte, body []byte, flush bool) error {
	s.c.wmu.Lock()
	defer s.c.wmu.Unlock()
	w := s.c.writer()
	if err := wire.WriteHeader(w, typ, len(body)); err != nil {
		return err
	}
	if _, err := w.Write(body); err != nil {
		return err
	}
	if flush {
		return s.c.flush()
	}
	return nil
}

// isFatalError peeks at an ErrorResponse's severity without consuming it,
// so that a server's own FATAL (an admin shutdown, say) is the last word
// the client hears instead of a second error from the proxy.
func isFatalError(c *pool.Conn, n int) bool {
	b, err := c.R.Peek(min(n, 16))
	if err != nil || len(b) < 2 || b[0] != 'S' {
		return false
	}
	sev := string(b[1:])
	return len(sev) >= 5 && (sev[:5] == "FATAL" || sev[:5] == "PANIC")
}

// staleStatement peeks at an ErrorResponse for a sign of a prepared
// statement that outlived a schema change (see schemaEpochs).
func staleStatement(c *pool.Conn, n int) bool {
	b, err := c.R.Peek(min(n, 128))
	return err == nil && staleStatementError(b)
}

// readyAfter is what remains to do once the client has its ReadyForQuery.
type readyAfter struct {
	release   bool
	violation bool
	drain     bool
	// positionNext: the next answer owed is an injected WAL-position read.
	positionNext bool
	// quiet: the ReadyForQuery answers the proxy's own request, though
	// the relay took it for the client's (see endOpenPart).
	quiet bool
}

// readyForQuery settles a ReadyForQuery: it pops what it answered, keeps
// the session settings the request committed and decides whether this is
// the safe point to give the connection back (detaching it at once, so
// the session's next request leases afresh).
func (s *Session) readyForQuery(c *pool.Conn, status byte, head *expect, sawError bool, rows uint64) readyAfter {
	s.mu.Lock()
	e := head
	popped := len(s.pending) > 0
	if popped {
		if head.open {
			// The relay's copy of a batch sent in parts predates its
			// last; a request sent whole is not touched once queued,
			// and its copy (which is large) need not be made again.
			queued := s.pending[0]
			e = &queued
		}
		// Shifted down rather than resliced, so the queue's array is
		// reused rather than outgrown one request at a time.
		s.pending = slices.Delete(s.pending, 0, 1)
	}
	injected := e.injected
	// A COPY the server still waited for has ended, by an error at the
	// latest.
	s.copyingIn = false
	if !injected {
		took := s.noteReady(status, e.sent)
		if e.query != nil && !e.sent.IsZero() {
			s.noteQuery(e.query, took, sawError, rows)
		}
		// The answer beat a query_timeout that closed the connection
		// just after it arrived: the request is done, nothing timed out.
		s.timedOut = nil
	}
	if e.reset && !sawError {
		// What the proxy knew of the session is gone with it.
		if st, ok := c.State.(*serverState); ok {
			st.Reset()
		}
	}
	var violation bool
	unpin, releases := false, e.releases
	if !injected {
		// outside: the request ran outside any transaction, so no
		// rollback can bring back what it ended.
		outside := !e.rollback && status == 'I' && s.txStatus == 'I'
		if !sawError {
			s.pin(e.pins)
			releases |= s.noteCursors(e)
			releases |= s.noteRole(e, outside)
		}
		unpin = releases != 0 && !sawError && outside
		s.settleSets(c, e, status, sawError)
		if e.routed {
			s.executed(e, status, sawError)
			s.readLSNAfter(c, e)
		}
		s.txStatus = status
		violation = status != 'I' && s.l.mode == config.PoolStatement
	}
	safe := len(s.pending) == 0 && !s.openBatch
	if unpin && safe {
		s.unpin(releases)
	}
	if popped && e.plan != nil && s.sparePlan == nil {
		// Answered: nothing follows the plan any more, and the next
		// request may have it (a driver's prepared statement needs one
		// per transaction: its Describe is checked against the shape
		// the client was shown). Only a plan taken off the queue here:
		// the relay's own copy of an expectation may be one answered
		// before, whose plan went back then.
		s.sparePlan = e.plan
	}
	positionNext := len(s.pending) > 0 && s.pending[0].captureLSN
	gone, draining := s.gone, s.draining
	release := safe && (gone || s.releasable(status))
	if release {
		s.detach(c)
	}
	s.mu.Unlock()

	if !gone && !injected && safe {
		s.idleDeadline(status)
	}
	if e.ddl && !sawError {
		s.srv.classifiers.refresh(s.l.db.DBName)
		s.epoch.Add(1)
	}
	return readyAfter{release: release, violation: violation && !gone, drain: safe && draining && !gone && status == 'I',
		positionNext: positionNext, quiet: injected}
}

// handBack gives c back to the pool at the safe point; the relay is then
// done with it.
func (s *Session) handBack(c *pool.Conn, a readyAfter) {
	if !a.release {
		return
	}
	// The request that was just answered may still be in the middle of
	// its Flush on the session goroutine: the answer can arrive before
	// the write call returns. Handing c over before that write ends
	// would let the next owner share its buffer.
	s.serverWrite.Lock()
	//lint:ignore SA2001 an empty critical section waits for the writer.
	s.serverWrite.Unlock()
	// A client that left had its cleanup sent by leave.
	c.Pool().Release(c, false)
}

// afterReady ends the session, once the client has its ReadyForQuery,
// when the request broke statement pooling or the proxy is draining.
func (s *Session) afterReady(a readyAfter) {
	if a.violation {
		// The server connection is rolled back and reset when the client
		// is gone, as for any client that leaves mid-transaction.
		s.kill(pgerr.Fatal(pgerr.FeatureNotSupported, "transaction blocks not allowed in statement pooling mode"))
	}
	if a.drain {
		s.kill(s.drainReason())
	}
}

// flushClient sends what the client's buffer holds.
func (s *Session) flushClient() error {
	s.c.wmu.Lock()
	defer s.c.wmu.Unlock()
	return s.c.flush()
}

// settleSets keeps SETs that took effect: at once outside a transaction,
// at COMMIT inside one; a failure or rollback discards them, as the
// server does. s.mu is held.
func (s *Session) settleSets(c *pool.Conn, e *expect, status byte, sawError bool) {
	s.txnSets = append(s.txnSets, e.sets...)
	s.txnSets = append(s.txnSets, s.observed...)
	s.observed = s.observed[:0]
	if status != 'I' || len(s.txnSets) == 0 {
		return
	}
	if !sawError && !e.rollback && s.txStatus != 'E' {
		s.params.track(s.txnSets)
		// c was brought to the client's settings before the request,
		// and now holds what it committed too: the next client of c
		// must not find them in place of its own.
		s.params.installed(stateOf(c, s.st.cfg.Pool.MaxPreparedStatements))
	}
	s.txnSets = s.txnSets[:0]
}

// idleDeadline arms the client read deadline once the client has every
// answer it asked for: idle_transaction_timeout inside a transaction, so
// an abandoned transaction cannot hold a server connection for ever, and
// client_idle_timeout outside one. It is called before the client sees
// its ReadyForQuery, so the client's next message, which disarms it
// (disarmIdle), comes after.
func (s *Session) idleDeadline(status byte) {
	d := s.st.clientIdleTimeout()
	if status == 'T' || status == 'E' {
		d = s.st.idleTxTimeout()
	}
	if d <= 0 {
		return
	}
	_ = s.c.Conn.SetReadDeadline(time.Now().Add(d))
	s.idleArmed.Store(true)
}

// disarmIdle lifts the idle deadline once the client speaks again: a
// query that outlasts the timeout is no idle client (in session mode the
// session goroutine reads the client while the query runs).
func (s *Session) disarmIdle() {
	if s.idleArmed.Load() && s.idleArmed.Swap(false) {
		_ = s.c.Conn.SetReadDeadline(time.Time{})
	}
}

// serverFailed handles a lost server connection: the connection is
// dropped, and a client that was still there is told and disconnected,
// since its session state went with the server.
func (s *Session) serverFailed(c *pool.Conn, err error, serverSaidFatal bool) {
	c.MarkBroken()
	s.mu.Lock()
	s.detach(c)
	s.pending = nil
	s.openBatch = false
	gone, timedOut := s.gone, s.timedOut
	s.mu.Unlock()
	c.Pool().Release(c, false)
	if gone {
		return
	}
	if timedOut != nil {
		s.kill(timedOut)
		return
	}
	s.srv.metrics.serverFailure.Inc()
	s.srv.log.Warn("server connection lost", "server", c.Addr, "user", s.l.user.Name, "err", err)
	if serverSaidFatal {
		s.closeClient()
		return
	}
	s.kill(pgerr.Wrap(err, pgerr.SeverityFatal, pgerr.ConnectionFailure,
		"pgninja: server connection lost").WithHint("The server closed the connection unexpectedly; reconnect to continue."))
}

// positionReadLost handles a server connection lost while only the
// WAL-position read behind a finished request was due. The request's
// answer is complete and its commit done: the client gets the
// ReadyForQuery held for it, not an error that would have it believe
// the commit lost (and run it again), and the session goes on with
// another server connection. The commit counts as of an unknown
// position.
func (s *Session) positionReadLost(c *pool.Conn, err error, ready byte, clientDead bool) bool {
	s.mu.Lock()
	if len(s.pending) != 1 || !s.pending[0].captureLSN || s.openBatch || s.gone {
		s.mu.Unlock()
		return false
	}
	c.MarkBroken()
	s.detach(c)
	s.pending = nil
	s.commitPositionLost()
	s.mu.Unlock()
	c.Pool().Release(c, false)
	s.srv.metrics.serverFailure.Inc()
	s.srv.log.Warn("server connection lost after answering; the commit's WAL position is unknown",
		"server", c.Addr, "user", s.l.user.Name, "err", err)
	if !clientDead {
		_ = s.forwardSmall('Z', []byte{ready}, true)
	}
	return true
}

// injectedFailed handles a failure of the proxy's own statements (the
// SETs that bring a server connection to the client's settings, a
// re-PREPARE, a WAL-position read). The client's request beside them
// still runs and reports its own errors, so the client is warned, with
// the server's SQLSTATE, that it ran without what failed. What the proxy
// knows of the connection's state is now wrong, so it is closed rather
// than lent again.
//
// A WAL-position read cut short by the server's end (a FATAL error) is no
// concern of the client's: its commit stands, and the connection's loss
// is handled next (see positionReadLost).
func (s *Session) injectedFailed(c *pool.Conn, body []byte, clientDead, positionRead bool) error {
	c.MarkBroken()
	var er pgproto3.ErrorResponse
	if err := er.Decode(body); err != nil {
		return nil
	}
	s.srv.log.Warn("pgninja session setup statement failed", "user", s.l.user.Name,
		"code", er.Code, "message", er.Message)
	s.mu.Lock()
	gone := s.gone
	s.mu.Unlock()
	if clientDead || gone || positionRead && (er.Severity == "FATAL" || er.Severity == "PANIC") {
		return nil
	}
	return s.warn(&pgproto3.NoticeResponse{Code: er.Code, Detail: er.Detail,
		Message: "pgninja: a statement the proxy ran for this session on its server connection failed: " + er.Message})
}

// warn queues a WARNING for the client, to go out with what it is sent
// next; n's Severity is filled in.
func (s *Session) warn(n *pgproto3.NoticeResponse) error {
	n.Severity, n.SeverityUnlocalized = "WARNING", "WARNING"
	msg := wire.Append(nil, n)
	return s.forwardSmall('N', msg[wire.HeaderLen:], false)
}
