package proxy

import (
	"time"

	"github.com/ai-ninja/pgninja/pool"
)

// A replica that stops answering without going away (a hung host, a
// stopped process, a network that drops packets without a reset) holds
// the reads in flight on it until it answers again, however long: no
// error reaches the proxy. The health checks notice within their timeout
// and take it out of rotation for new reads. watchReplicas then ends the
// server connections of the reads still waiting there, and each read's
// relay runs it again on the primary, as for a server that died (see
// reroute.go). Only reads that may be run again are ended: a transaction,
// or anything else, waits for the replica as before.

// replicaWatchInterval is how soon after the health checks take a
// replica out of rotation its waiting reads move.
const replicaWatchInterval = 100 * time.Millisecond

// watchReplicas ends the waiting reads of each replica that turns
// unhealthy, until done is closed.
func (s *Server) watchReplicas(done <-chan struct{}) {
	healthy := map[string]bool{}
	tick := time.NewTicker(replicaWatchInterval)
	defer tick.Stop()
	for {
		select {
		case <-done:
			return
		case <-tick.C:
		}
		for _, b := range s.router.Backends().Snapshot().States() {
			was := healthy[b.Name]
			healthy[b.Name] = b.Healthy
			if was && !b.Healthy && !b.Primary {
				s.endReadsOn(b.Name)
			}
		}
	}
}

// endReadsOn closes the server connections of the reads waiting on
// backend that may be run again elsewhere.
func (s *Server) endReadsOn(backend string) {
	ended := 0
	for _, sess := range s.sessionList() {
		if c := sess.readWaitingOn(backend); c != nil {
			c.MarkBroken()
			_ = c.Conn.Close()
			ended++
		}
	}
	if ended > 0 {
		s.log.Warn("replica stopped answering; running the reads waiting on it again on the primary",
			"server", backend, "reads", ended)
	}
}

// readWaitingOn returns the server connection on backend of the client's
// request in flight, if that request only reads outside any transaction.
func (s *Session) readWaitingOn(backend string) *pool.Conn {
	s.mu.Lock()
	defer s.mu.Unlock()
	c := s.lease
	if c == nil || s.leaseDecision.Backend != backend || s.rs.InTxn || s.pinned != 0 || s.gone {
		return nil
	}
	for _, e := range s.pending {
		if e.injected {
			continue
		}
		if e.open || !e.routed || !onlyReads(e.class) {
			return nil
		}
		return c
	}
	return nil
}
