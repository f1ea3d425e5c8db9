package proxy

import (
	"encoding/binary"

	"github.com/ai-ninja/pgninja/pool"
	"github.com/ai-ninja/pgninja/router"
)

// A replica that dies (crash, immediate shutdown, a cut network) takes the
// reads running on it down with it. A read sent there on a fresh lease,
// whose answer the client has seen no part of, is re-run on the primary
// instead of failing the client: it had no effect a replica could keep,
// and the client cannot tell the difference. This is what lets reads
// carry on through a replica failure while the health checks catch up.
//
// Anything else lost with its server still fails the client as before: a
// write (it may have committed), a transaction (its snapshot and effects
// are gone), a pinned session (its server-side state is gone), a request
// that closes or SQL-prepares statements (building it again would not
// give the same request), and an answer the client has begun to see. A server that
// says FATAL before closing (pg_terminate_backend, a fast shutdown) is
// not retried either: that may be someone stopping this very query.

// rerouteLost decides whether the request whose server connection c just
// failed is re-run on the primary, and if so gives c up. The caller is
// the request's own relay, on the session goroutine, before anything of
// the answer was forwarded.
func (s *Session) rerouteLost(c *pool.Conn, err error) bool {
	s.mu.Lock()
	var e *expect
	for i := range s.pending {
		if !s.pending[i].injected {
			e = &s.pending[i]
			break
		}
	}
	ok := s.rerouteOK && e != nil && e.routed && !e.open && e.decision.Target == router.Replica &&
		!s.rs.InTxn && s.pinned == 0 && !s.gone && !s.draining && s.lease == c
	s.mu.Unlock()
	if !ok || !s.replayable() {
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
	s.mu.Unlock()
	c.Pool().Release(c, false)
	s.srv.metrics.serverFailure.Inc()
	s.srv.metrics.readsRerouted.Inc()
	s.srv.log.Warn("replica connection lost before it answered; running the read on the primary",
		"server", c.Addr, "user", s.l.user.Name, "err", err)
	return true
}

// replayable reports whether building the collected request again for
// another server gives the same request: nothing in it closes the
// client's statements or makes SQL-level ones (Close, PREPARE,
// DEALLOCATE, EXECUTE), and no function is called by OID. The names its
// Parses gave are undone by rerouteLost.
func (s *Session) replayable() bool {
	req := s.req
	for len(req) >= 5 {
		typ := req[0]
		n := int(binary.BigEndian.Uint32(req[1:5])) + 1
		body := req[5:n]
		req = req[n:]
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

// primaryInstead is where a rerouted read goes.
func (s *Session) primaryInstead() router.Decision {
	return router.Decision{Target: router.Primary, Backend: s.primaryName, Reason: router.ReasonNoHealthyReplica}
}
