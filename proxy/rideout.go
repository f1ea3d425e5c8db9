package proxy

import (
	"context"
	"sync/atomic"
	"time"

	"github.com/ai-ninja/pgninja/router"
)

// With routing on, a write that finds no primary waits, like a request
// without routing, for the configured primary when that is the server
// that stopped answering (restarting, say), instead of failing with 57P03
// once the health checks have missed it twice. The wait ends early when
// routing finds a primary again (a failover), and a connection got from
// the old primary after another server was promoted is not used.

// restartingPrimary is where a request goes that needs the primary when
// routing knows none: the configured primary, if it is the one that
// stopped answering; its pool waits for it up to pool.restart_wait. One
// that answers in recovery (demoted by a failover) never takes writes, so
// then the request fails with 57P03 as before.
func (s *Session) restartingPrimary() (router.Decision, bool) {
	st, ok := s.srv.router.Backends().Snapshot().Get(s.primaryName)
	if !ok || st.Healthy {
		return router.Decision{}, false
	}
	return router.Decision{Target: router.Primary, Backend: s.primaryName, Reason: router.ReasonNoPrimary}, true
}

// untilPrimaryFound derives from ctx a context that ends once routing
// knows a primary again, so that a write waiting for the configured
// primary to restart goes where routing now sends it rather than wait out
// a primary that a failover replaced. stop ends the watch and reports
// whether it was what ended the context.
func (s *Session) untilPrimaryFound(ctx context.Context) (_ context.Context, stop func() bool) {
	ctx, cancel := context.WithCancel(ctx)
	var found atomic.Bool
	done := make(chan struct{})
	go func() {
		tick := time.NewTicker(50 * time.Millisecond)
		defer tick.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-done:
				return
			case <-tick.C:
				if _, ok := s.srv.router.Backends().Snapshot().Primary(); ok {
					found.Store(true)
					cancel()
					return
				}
			}
		}
	}()
	return ctx, func() bool {
		close(done)
		cancel()
		return found.Load()
	}
}

// stillPrimary reports whether no server but the configured primary has
// been found writable, after waiting for it to come back.
func (s *Session) stillPrimary() bool {
	p, ok := s.srv.router.Backends().Snapshot().Primary()
	return !ok || p.Name == s.primaryName
}
