package proxy

import (
	"time"

	"github.com/ai-ninja/pgninja/internal/pgerr"
)

// checkQueryTimeout ends a request its server has not answered within
// limit: the server connection is closed, the relay that sees it close
// ends the client with 57014, and the query is cancelled on the server,
// which would otherwise run it on until it next wrote.
//
// The connection is closed under s.mu, as KILL closes one: the relay
// releases it at the safe point under the same lock, so the connection
// closed is this request's and never one lent on to another client.
func (s *Session) checkQueryTimeout(now time.Time, limit time.Duration) {
	s.mu.Lock()
	c, sent := s.lease, s.runningSince()
	if c == nil || sent.IsZero() || now.Sub(sent) < limit || s.timedOut != nil || s.gone {
		s.mu.Unlock()
		return
	}
	s.timedOut = pgerr.Fatal(pgerr.QueryCanceled, "terminating connection: the query ran longer than query_timeout (%s)", limit)
	s.abandon(c, "query_timeout")
	s.mu.Unlock()
	s.srv.log.Warn("query_timeout: closed the server connection of a query that ran too long, and cancelled it",
		"server", c.Addr, "user", s.l.user.Name, "running", now.Sub(sent).Round(time.Millisecond).String())
}
