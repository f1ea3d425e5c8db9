package proxy

import (
	"time"

	"github.com/ai-ninja/pgninja/config"
	"github.com/ai-ninja/pgninja/internal/rawconn"
)

// departedAfter is how long a request runs before the sweep looks at
// whether its client is still there; shorter requests end soon anyway.
const departedAfter = time.Second

// checkDeparted ends a request whose client has closed its connection.
//
// Outside session mode a complete request's answer is relayed on the
// session goroutine itself (see startRelay), so nobody reads the client
// while the server works, and a client that leaves is noticed only when
// its answer cannot be written: a long statement would run on, holding
// its locks and its server connection, for nobody. The sweep peeks at the
// client's socket instead; on finding it closed it abandons the request
// as leave does a busy connection's. Marking the
// session gone keeps the relay from re-running the request elsewhere.
// In session mode the session goroutine reads the client throughout and
// sees it leave itself.
func (s *Session) checkDeparted(now time.Time) {
	s.mu.Lock()
	c, sent := s.lease, s.runningSince()
	if c == nil || sent.IsZero() || now.Sub(sent) < departedAfter || s.gone || s.timedOut != nil ||
		s.l.mode == config.PoolSession {
		s.mu.Unlock()
		return
	}
	s.mu.Unlock()
	if closed, ok := rawconn.PeerClosed(s.c.Conn); !ok || !closed {
		return
	}
	s.mu.Lock()
	if s.lease != c || s.gone {
		s.mu.Unlock()
		return
	}
	s.gone = true
	s.abandon(c, "client left mid-query")
	s.mu.Unlock()
	s.srv.log.Debug("client left mid-query: closed its server connection and cancelled the query",
		"server", c.Addr, "user", s.l.user.Name)
}
