package proxy

import (
	"time"

	"github.com/ai-ninja/pgninja/internal/pgerr"
)

// queryTimeoutCheck is how often the proxy looks for requests that have
// outlived pool.query_timeout. Like PgBouncer's janitor it is a sweep,
// not a timer per request, so requests pay nothing for the setting.
const queryTimeoutCheck = time.Second

// watchQueryTimeouts sweeps the sessions until done for requests that
// have run too long (query_timeout) or whose client has left (see
// departed.go), and for idle clients to park (park.go).
func (srv *Server) watchQueryTimeouts(done <-chan struct{}) {
	t := time.NewTicker(queryTimeoutCheck)
	defer t.Stop()
	for {
		select {
		case now := <-t.C:
			limit := srv.settings.Load().cfg.Pool.QueryTimeout
			for _, sess := range srv.sessionList() {
				if limit > 0 {
					sess.checkQueryTimeout(now, limit)
				}
				sess.checkDeparted(now)
				sess.c.park.sweep(sess.c)
			}
		case <-done:
			return
		}
	}
}

// runningSince is when the request the server is working on was sent,
// zero when there is none; s.mu is held. Only a complete request counts
// (up to Sync or Query): a batch the client is still sending, or left
// open after a Flush, waits on the client, not the server.
func (s *Session) runningSince() time.Time {
	for i := range s.pending {
		if e := &s.pending[i]; !e.injected {
			if !e.open {
				return e.sent
			}
			break
		}
	}
	return time.Time{}
}

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
	c.MarkBroken()
	_ = c.Conn.Close()
	s.mu.Unlock()
	s.srv.log.Warn("query_timeout: closed the server connection of a query that ran too long, and cancelled it",
		"server", c.Addr, "user", s.l.user.Name, "running", now.Sub(sent).Round(time.Millisecond).String())
	if err := sendCancel(c.Addr, c.PID, c.Secret); err != nil {
		s.srv.log.Warn("query_timeout: cancel request to server failed", "server", c.Addr, "err", err)
	}
}
