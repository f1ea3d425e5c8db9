package proxy

import (
	"runtime/debug"
	"time"
)

// sweepEvery is how often the proxy looks over its sessions. Like
// PgBouncer's janitor it is a sweep, not a timer per request, so that
// requests pay nothing for what it looks for.
const sweepEvery = time.Second

// sweepSessions looks over the sessions until done for requests that have
// run too long (query_timeout), for requests whose client has left
// (departed.go), for idle clients to park (park.go), and for the memory
// of many clients just parked to give back (releaseGate).
func (srv *Server) sweepSessions(done <-chan struct{}) {
	t := time.NewTicker(sweepEvery)
	defer t.Stop()
	var gate releaseGate
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
			if gate.observe(srv.parkedClients()) {
				debug.FreeOSMemory()
			}
		case <-done:
			return
		}
	}
}

// runningSince is when the request the server is working on was sent,
// zero when there is none; s.mu is held. Only a complete request counts
// (up to Sync or Query): a batch the client is still sending, or left
// open after a Flush, waits on the client, not the server; so does a
// COPY FROM STDIN until the client's CopyDone or CopyFail.
func (s *Session) runningSince() time.Time {
	if s.copyingIn {
		// The server waits for the client, however slowly it sends.
		return time.Time{}
	}
	for i := range s.pending {
		if e := &s.pending[i]; !e.injected {
			if !e.open {
				if s.copyEnded.After(e.sent) {
					return s.copyEnded
				}
				return e.sent
			}
			break
		}
	}
	return time.Time{}
}
