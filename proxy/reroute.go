package proxy

import (
	"bytes"
	"context"
	"errors"
	"time"

	"github.com/ai-ninja/pgninja/internal/pgerr"
	"github.com/ai-ninja/pgninja/internal/wire"
	"github.com/ai-ninja/pgninja/parser"
	"github.com/ai-ninja/pgninja/pool"
	"github.com/ai-ninja/pgninja/router"
)

// A server that dies (crash, immediate or fast shutdown, a cut network)
// takes the requests running on it down with it. A request that only
// reads, sent on a lease of its own, whose answer the client has seen no
// part of, is run again on the primary instead of failing the client: it
// changed nothing, and the client cannot tell the difference. Reads on a
// replica carry on while the health checks catch up; reads on a primary
// that restarts wait for it, since the pool dials a restarting server
// again (pool.dialAgain).
//
// Anything else lost with its server still fails the client as before: a
// write or volatile call (it may have taken effect), a transaction (its
// snapshot and effects are gone), a pinned session (its server-side
// state is gone), a request that closes or SQL-prepares statements
// (building it again would not give the same request), and an answer the
// client has begun to see. A server's own FATAL 57P01 is retried only
// when the server is shutting down: pg_terminate_backend sends the same
// error, and then someone is stopping this very query.

// maxReruns bounds how often one request is run again: a server that has
// just gone down may leave more dead connections than the pool's check
// catches (one dialled as it went), but a request that keeps failing must
// fail.
const maxReruns = 3

// mayReroute reports whether the request whose server connection c is
// failing may be re-run on the primary: a request that only reads, sent
// on a lease of its own (so outside any transaction).
func (s *Session) mayReroute(c *pool.Conn) bool {
	s.mu.Lock()
	var e *expect
	for i := range s.pending {
		if !s.pending[i].injected {
			e = &s.pending[i]
			break
		}
	}
	ok := s.rerouteOK && e != nil && !e.open && !s.rs.InTxn && s.txStatus == 'I' && s.pinned == 0 && !s.gone && !s.draining &&
		s.timedOut == nil && s.lease == c
	var cls *parser.Classification
	if ok && e.routed {
		cls = e.class
	}
	s.mu.Unlock()
	if !ok || !s.replayable() {
		return false
	}
	if cls == nil {
		// Without routing nothing was classified; only now is it needed.
		cls = s.requestClass()
	}
	return onlyReads(cls)
}

// onlyReads: every statement of the request reads, and calls nothing
// volatile, so running it twice changes nothing. A read a hint sent to a
// replica qualifies only so: a volatile function that the replica could
// not let write could write on the primary.
func onlyReads(c *parser.Classification) bool {
	if c == nil || c.VolatileFunc || c.Locking || c.Pins != 0 || len(c.StatementKinds) == 0 {
		return false
	}
	for _, k := range c.StatementKinds {
		if k != parser.Read {
			return false
		}
	}
	return true
}

// rerouteLost decides whether the request whose server connection c just
// failed is re-run on the primary, and if so gives c up and drops what of
// the answer was held back from the client. The caller is the request's
// own relay, on the session goroutine, before anything of the answer
// reached the client.
func (s *Session) rerouteLost(c *pool.Conn, err error) bool {
	if !s.mayReroute(c) {
		return false
	}
	c.MarkBroken()
	for _, name := range s.parsedNow {
		// Built again, the request's Parse must find its name free.
		delete(s.stmts, name)
	}
	s.mu.Lock()
	s.detach(c)
	s.pending = nil
	s.openBatch = false
	s.rerouting = true
	s.reruns++
	s.mu.Unlock()
	c.Pool().Release(c, false)
	s.c.discardPending()
	s.srv.metrics.serverFailure.Inc()
	s.srv.metrics.readsRerouted.Inc()
	s.srv.log.Warn("server connection lost before it answered; running the read again on the primary",
		"server", c.Addr, "user", s.l.user.Name, "err", err)
	return true
}

// heldBack lists the messages that open an answer. The inline relay keeps
// them from the client until more of the answer comes (the server always
// sends more before its ReadyForQuery): a server that fails in between,
// as one that runs a long query before its first row can, then leaves
// nothing the client has seen.
func heldBack(typ byte) bool {
	switch typ {
	case '1', '2', '3', 't', 'n', 'T':
		return true
	}
	return false
}

// errServerShutdown is why a read whose server said 57P01 while shutting
// down is run again.
var errServerShutdown = errors.New("the server is shutting down")

// errServerLost ends a request whose server connection was lost before
// it went out; the client has been told.
var errServerLost = errors.New("server connection lost")

// serverShuttingDown tells a server being shut down from one of its
// backends being terminated, both of which end a connection with FATAL
// 57P01: a server shutting down refuses new connections (57P03), or no
// longer listens.
func (s *Session) serverShuttingDown(c *pool.Conn) bool {
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	err := c.Pool().Probe(ctx)
	return err != nil && pool.Restarting(err)
}

// goingAway: a NoticeResponse that warns of the server ending this
// connection because it shuts down at once (57P01) or another backend
// crashed (57P02).
func goingAway(c *pool.Conn, typ byte, n int) bool {
	if typ != 'N' {
		return false
	}
	code := peekCode(c, n)
	return code == pgerr.AdminShutdown || code == "57P02"
}

// peekCode returns an ErrorResponse's (or NoticeResponse's) SQLSTATE
// without consuming it.
func peekCode(c *pool.Conn, n int) string {
	b, err := c.R.Peek(min(n, 64))
	if err != nil {
		return ""
	}
	for len(b) > 1 && b[0] != 0 {
		end := bytes.IndexByte(b[1:], 0)
		if end < 0 {
			return ""
		}
		if b[0] == 'C' {
			return string(b[1 : 1+end])
		}
		b = b[2+end:]
	}
	return ""
}

// replayable reports whether building the collected request again for
// another server gives the same request: nothing in it closes the
// client's statements or makes SQL-level ones (Close, PREPARE,
// DEALLOCATE, EXECUTE), and no function is called by OID. The names its
// Parses gave are undone by rerouteLost.
func (s *Session) replayable() bool {
	for typ, body := range wire.Bodies(s.req) {
		switch typ {
		case 'P', 'B', 'D', 'E', 'S', 'H':
		case 'Q':
			if s.classifyQuery(body).Pins != 0 {
				return false
			}
		default:
			return false
		}
	}
	return true
}

// primaryInstead is where a read goes that its replica cannot take: one
// run again after its server died, or one whose replica has no
// connection to give.
func (s *Session) primaryInstead() router.Decision {
	return router.Decision{Target: router.Primary, Backend: s.primaryName, Reason: router.ReasonNoHealthyReplica}
}
