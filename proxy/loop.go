package proxy

import (
	"crypto/tls"
	"encoding/binary"
	"errors"
	"io"
	"net"
	"slices"
	"time"

	"github.com/ai-ninja/pgninja/config"
	"github.com/ai-ninja/pgninja/internal/pgerr"
	"github.com/ai-ninja/pgninja/internal/rawconn"
	"github.com/ai-ninja/pgninja/internal/wire"
	"github.com/ai-ninja/pgninja/parser"
	"github.com/ai-ninja/pgninja/pool"
	"github.com/jackc/pgx/v5/pgproto3"
)

// serve is the session's one loop over client messages. It returns when
// the client leaves (nil) or must be thrown out (an error to send it).
func (s *Session) serve() error {
	for {
		typ, n, err := s.readHeader()
		if err == errParked {
			return err
		}
		if err != nil {
			return s.readFailed(err)
		}
		switch typ {
		case 'X':
			return nil
		case 'd', 'c', 'f':
			if err := s.copyIn(typ, n); err != nil {
				return err
			}
		case 'Q', 'S', 'F', 'H', 'P', 'B', 'D', 'E', 'C':
			if err := s.collect(typ, n); err != nil {
				return err
			}
		default:
			return pgerr.Fatal(pgerr.ProtocolViolation, "invalid frontend message type %d", typ)
		}
	}
}

// readHeader reads the next client message header. A transaction-mode
// client that holds no server connection and stays quiet is asked by the
// sweep to give its read buffer back and wait on the bare socket (see
// park.go), so that thousands of idle clients cost little; busy clients
// keep their buffer.
func (s *Session) readHeader() (byte, int, error) {
	if s.l.mode == config.PoolSession || s.c.r.Buffered() > 0 || s.st.idleDeadlines() {
		typ, n, err := wire.ReadHeader(s.c.r, s.c.maxMsg)
		if err == nil {
			s.disarmIdle()
		}
		return typ, n, err
	}
	s.mu.Lock()
	idle := s.lease == nil
	s.mu.Unlock()
	if !idle {
		return wire.ReadHeader(s.c.r, s.c.maxMsg)
	}
	s.c.park.begin()
	typ, n, err := wire.ReadHeader(s.c.r, s.c.maxMsg)
	if !s.c.park.end(s.c) || err == nil || !isTimeout(err) {
		return typ, n, err
	}
	if s.c.r.Buffered() > 0 {
		// Part of a header arrived; wait for the rest as usual.
		return wire.ReadHeader(s.c.r, s.c.maxMsg)
	}
	s.c.parkReader()
	if s.parkInLot() {
		return 0, 0, errParked
	}
	if err := s.c.waitUnpark(); err != nil {
		return 0, 0, err
	}
	return wire.ReadHeader(s.c.r, s.c.maxMsg)
}

// parkInLot hands the quiet client to the parking lot, if there is one.
// Its read buffer has gone back; the resumption takes one again (see
// resume). A TLS client parks by its socket too: its wait ended in a
// timeout inside tls.Conn.Read, which reads the socket only when it holds
// no whole record it could return, so what it keeps (at most part of the
// next record) is waiting for bytes the socket will show.
func (s *Session) parkInLot() bool {
	if s.srv.lot == nil {
		return false
	}
	nc := s.c.Conn
	if tc, ok := nc.(*tls.Conn); ok {
		nc = tc.NetConn()
	}
	rc, ok := nc.(*rawconn.Conn)
	if !ok {
		return false
	}
	return rc.Idle(func(fd int) error { return s.srv.lot.park(s, fd) }) == nil
}

// isTimeout is kept apart from its caller so that the error target it
// declares is allocated only when a read fails.
func isTimeout(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}

// readFailed tells a client that left from one that timed out or sent
// something the proxy must refuse.
func (s *Session) readFailed(err error) error {
	if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, net.ErrClosed) {
		return nil
	}
	if isTimeout(err) {
		s.mu.Lock()
		status := s.txStatus
		s.mu.Unlock()
		if status == 'I' {
			// PostgreSQL's words and SQLSTATE for its idle_session_timeout.
			return pgerr.Fatal(pgerr.IdleSessionTimeoutOutside, "terminating connection due to idle-session timeout")
		}
		return pgerr.Fatal(pgerr.IdleSessionTimeout, "terminating connection due to idle-in-transaction timeout")
	}
	if pgerr.SQLState(err) != "" {
		return err
	}
	return nil
}

// collect adds one message to the request and sends the request on at a
// boundary: Query, Sync and FunctionCall end a request that the server
// will answer with ReadyForQuery; Flush sends what there is without one.
func (s *Session) collect(typ byte, n int) error {
	if s.phase == phaseDiscard {
		if err := wire.SkipBody(s.c.r, n); err != nil {
			return s.readFailed(err)
		}
		if typ == 'S' {
			s.phase = phaseReady
			s.mu.Lock()
			status := s.txStatus
			s.mu.Unlock()
			return s.c.Send(&pgproto3.ReadyForQuery{TxStatus: status})
		}
		return nil
	}
	s.req = wire.AppendHeader(s.req, typ, n)
	start := len(s.req)
	s.req = slices.Grow(s.req, n)[:start+n]
	if _, err := io.ReadFull(s.c.r, s.req[start:]); err != nil {
		return s.readFailed(io.ErrUnexpectedEOF)
	}
	s.lastReq = typ
	if typ != 'Q' && typ != 'S' && typ != 'F' && typ != 'H' {
		typ = s.collectRun()
	}
	switch typ {
	case 'Q', 'S', 'F':
		return s.send(true)
	case 'H':
		return s.send(false)
	}
	if len(s.req) > streamThreshold || (s.l.mode == config.PoolSession && s.c.r.Buffered() == 0) {
		// In session mode a client that pauses mid-batch has the server
		// see what it sent so far, as PostgreSQL would: a statement
		// timeout, say, runs from its Parse. Elsewhere the request is
		// held, so that no server connection waits on a slow client and
		// the whole batch is routed at once.
		return s.send(false)
	}
	return nil
}

// collectRun adds to the request the complete extended-query messages
// buffered behind the one just collected, up to the Sync or Flush that
// ends the batch, in one copy: a driver sends its batch in one write, and
// reading it a message at a time cost a header read and a body read for
// each. It stops where collect would act at a message of its own: one
// not all buffered, too large, or taking the request past
// streamThreshold. It returns the type of the last message collected.
func (s *Session) collectRun() byte {
	buf, _ := s.c.r.Peek(s.c.r.Buffered())
	end := 0
	for len(buf)-end >= 5 {
		typ := buf[end]
		l := int(binary.BigEndian.Uint32(buf[end+1 : end+5]))
		if !batchMessage(typ) || l < 4 || l-4 > s.c.maxMsg || l > len(buf)-end-1 ||
			len(s.req)+end+1+l > streamThreshold {
			break
		}
		end += 1 + l
		s.lastReq = typ
		if typ == 'S' || typ == 'H' {
			break
		}
	}
	s.req = append(s.req, buf[:end]...)
	_, _ = s.c.r.Discard(end)
	return s.lastReq
}

// batchMessage: an extended-query message, which collect only adds to
// the request, or the Sync or Flush that ends a batch.
func batchMessage(typ byte) bool {
	switch typ {
	case 'P', 'B', 'D', 'E', 'C', 'S', 'H':
		return true
	}
	return false
}

// send forwards the collected request. complete means it ends with a
// message the server answers with ReadyForQuery.
func (s *Session) send(complete bool) error {
	defer s.resetRequest()
	// The memo lives for one request: a volatility reload must reach the
	// next one.
	s.memoClass = nil
	var cls *parser.Classification
	if s.routed() {
		cls = s.requestClass()
		// An unknown hint is refused whether or not the request would
		// route afresh (a held lease skips routing).
		if cls.HintErr != nil {
			return s.refuse(routeError(cls.HintErr), complete)
		}
	}
	if complete {
		if signalled, err := s.signalLocally(); signalled || err != nil {
			return err
		}
		if deferred, err := s.deferBegin(); deferred || err != nil {
			return err
		}
		if ended, err := s.endEmpty(); ended || err != nil {
			return err
		}
	}
	defer func() { s.rerouteOK, s.rerouting, s.reruns = false, false, 0 }()
	for {
		rerouted, err := s.sendOnce(cls, complete)
		if err != nil || !rerouted {
			return err
		}
	}
}

// sendOnce leases a server connection for the collected request and sends
// it. rerouted means the request's server connection died before
// answering and the request is to be sent again, to the primary (see
// reroute.go).
func (s *Session) sendOnce(cls *parser.Classification, complete bool) (rerouted bool, err error) {
	c, d, fresh, err := s.ensureLease(cls)
	if err != nil {
		return false, s.refuse(err, complete)
	}
	if s.owedSync(c) {
		return false, nil
	}
	switch {
	case s.l.mode == config.PoolSession:
	case fresh:
		if err := s.vetStatements(c); err != nil {
			s.serverFailed(c, err, false)
			return false, err
		}
	case !s.vetStatementsInUse(c):
		return false, errServerLost
	}
	out, e := s.req, expect{extended: s.lastReq == 'S'}
	var injected, begins int
	if s.l.mode != config.PoolSession {
		b := s.build(c)
		out, injected, begins = b.out, b.injected, b.begins
		e = expect{plan: b.plan, sets: b.sets, rollback: b.rollback, ddl: b.ddl, pins: b.pins, releases: b.releases,
			held: b.held, closed: b.closed, extended: e.extended}
	}
	e.query = s.statsClass(cls)
	s.mu.Lock()
	if cls != nil && complete {
		e.routed, e.class, e.decision = true, cls, d
		e.lsnFollows = s.needsLSN(cls, d)
		// Behind COPY FROM STDIN the server reads COPY data: a query sent
		// there aborts the connection.
		e.lsnAfter = e.lsnFollows && cls.CopyFromClient
	}
	for i := 0; i < injected; i++ {
		s.pending = append(s.pending, expect{injected: true, begun: i == 0 && begins > 0, standIn: i > 0 && i < begins})
	}
	s.queue(e, complete)
	if e.lsnFollows && !e.lsnAfter {
		s.pending = append(s.pending, expect{injected: true, captureLSN: true})
		out = appendQuery(out, lsnQuery)
	}
	s.openBatch = !complete
	s.mu.Unlock()
	s.srv.metrics.requests.Inc()
	s.writeServer(c, out)
	if !fresh {
		return false, nil
	}
	s.rerouteOK = s.reruns < maxReruns
	return s.startRelay(c, complete), nil
}

// queue records what the server owes for the request part just built; the
// caller holds s.mu. A part sent ahead of its Sync opens an expectation
// that the batch's later parts join, so that the whole batch, answered by
// one ReadyForQuery, is followed by one plan.
func (s *Session) queue(e expect, complete bool) {
	if n := len(s.pending); n > 0 && s.pending[n-1].open {
		open := &s.pending[n-1]
		if open.plan != nil && e.plan != nil {
			open.plan.extend(e.plan)
			s.sparePlan = e.plan
		}
		open.sets = append(open.sets, e.sets...)
		open.rollback = open.rollback || e.rollback
		open.ddl = open.ddl || e.ddl
		open.pins |= e.pins
		open.releases |= e.releases
		open.held = append(open.held, e.held...)
		open.closed = append(open.closed, e.closed...)
		if open.query == nil {
			// The part that executes (a batch's Sync may come alone).
			open.query = e.query
		}
		if complete {
			open.open = false
			open.extended = e.extended
			open.routed, open.class, open.decision = e.routed, e.class, e.decision
			open.lsnFollows, open.lsnAfter = e.lsnFollows, e.lsnAfter
		}
		return
	}
	if complete {
		if e.plan != nil && !e.plan.needed() {
			s.sparePlan, e.plan = e.plan, nil
		}
	} else {
		e.open = true
	}
	if !e.injected {
		e.sent = time.Now()
		s.lastRequest = e.sent
	}
	s.pending = append(s.pending, e)
}

// owedSync forwards a lone Sync that answers for one the server ignored
// during COPY FROM STDIN (see copySyncOwed): its ReadyForQuery is the one
// the COPY's request already waits for, so nothing new is queued.
func (s *Session) owedSync(c *pool.Conn) bool {
	if len(s.req) != 5 || s.req[0] != 'S' {
		return false
	}
	s.mu.Lock()
	owed := s.copySyncOwed && s.lease == c
	if owed {
		s.copySyncOwed = false
		s.openBatch = false
	}
	s.mu.Unlock()
	if owed {
		s.writeServer(c, s.req)
	}
	return owed
}

// writeServer writes b to the leased connection c and flushes. A failure
// means the server is gone: c is closed, and its relay sees the same
// socket fail, tells the client and ends the session.
func (s *Session) writeServer(c *pool.Conn, b []byte) {
	s.serverWrite.Lock()
	_, err := c.W.Write(b)
	if err == nil {
		err = c.W.Flush()
	}
	s.serverWrite.Unlock()
	if err != nil {
		c.MarkBroken()
		_ = c.Conn.Close()
	}
}

// startRelay starts the relay of a new lease. A complete request on a
// lease that pooling will end at the next safe point is relayed right
// here, on the session goroutine: until its ReadyForQuery the client has
// nothing to say that the server must hear, and one goroutine hand-off
// per transaction is saved. The relay moves to a goroutine of its own
// when the client must speak while the lease lasts (see relay).
func (s *Session) startRelay(c *pool.Conn, complete bool) (rerouted bool) {
	if complete && s.l.mode != config.PoolSession {
		return s.relay(c, true)
	}
	s.srv.relays.Go(relayJob{s, c})
	return false
}

// refuse answers a request that could not be sent (no server connection)
// the way the server would have answered a failure: an ErrorResponse, and
// ReadyForQuery when the request ended with one due.
func (s *Session) refuse(err error, complete bool) error {
	s.srv.log.Debug("request refused", "user", s.l.user.Name, "err", err)
	if pgerr.IsFatal(err) && pgerr.SQLState(err) == pgerr.AdminShutdown {
		return err
	}
	s.mu.Lock()
	s.failBegin()
	status := s.txStatus
	s.mu.Unlock()
	if !complete {
		s.phase = phaseDiscard
		return s.c.sendError(asError(err), 0)
	}
	return s.c.sendError(asError(err), status)
}

// asError keeps a refusal at ERROR severity: the client may retry on the
// same connection once the server or pool recovers.
func asError(err error) error {
	r := pgerr.Response(err)
	return &pgerr.Error{Severity: pgerr.SeverityError, Code: r.Code, Message: r.Message,
		Detail: r.Detail, Hint: r.Hint, Cause: err}
}

// keptBuffer is the most a session keeps of a request's buffers for the
// next request; larger ones, up to max_message_size, go with the request,
// so that an idle client holds little.
const keptBuffer = 64 << 10

func (s *Session) resetRequest() {
	s.memoQuery, s.memoClass = "", nil
	if cap(s.out) > keptBuffer {
		s.out, s.batch.out = nil, nil
	}
	if cap(s.req) > keptBuffer {
		s.req = nil
	} else {
		s.req = s.req[:0]
	}
}

// copyIn forwards COPY data. It belongs to a request already sent, so it
// goes straight to the leased connection; without one the server would
// ignore it, and so does the proxy.
func (s *Session) copyIn(typ byte, n int) error {
	s.mu.Lock()
	c := s.lease
	if typ != 'd' && s.copyingIn {
		s.copyingIn, s.copyEnded = false, time.Now()
	}
	s.mu.Unlock()
	if c == nil || s.phase == phaseDiscard {
		if err := wire.SkipBody(s.c.r, n); err != nil {
			return s.readFailed(err)
		}
		return nil
	}
	s.serverWrite.Lock()
	err := wire.WriteHeader(c.W, typ, n)
	if err == nil {
		err = wire.CopyBody(c.W, s.c.r, n)
	}
	if err == nil && (typ != 'd' || s.c.r.Buffered() == 0) {
		err = c.W.Flush()
	}
	s.serverWrite.Unlock()
	if err != nil {
		// Whether the server or the client failed (a client that left
		// mid-message), the server has part of a message and would
		// wait for the rest for good: the connection cannot be reused,
		// or even cleaned, and its relay must stop waiting on it.
		c.MarkBroken()
		_ = c.Conn.Close()
	}
	return nil
}
