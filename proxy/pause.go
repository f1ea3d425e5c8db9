package proxy

import (
	"context"
	"errors"
	"maps"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/ai-ninja/pgninja/internal/pgerr"
	"github.com/ai-ninja/pgninja/pool"
)

// PAUSE and RESUME are PgBouncer's way to restart or move a server with
// no client seeing an error: PAUSE lets every transaction and lease in
// flight end, closes the idle server connections and holds each client's
// next request until RESUME. pauses is the set in force: one for every
// database ("" key) and one per client database name.
type pauses struct {
	on atomic.Bool // anything paused: the one check a request pays
	mu sync.Mutex
	by map[string]chan struct{} // closed on RESUME
	// held are the pools a pause keeps from opening connections to their
	// minimum (pool.Hold), released on its RESUME.
	held map[string][]*pool.Pool
}

func newPauses() *pauses {
	return &pauses{by: map[string]chan struct{}{}, held: map[string][]*pool.Pool{}}
}

// hold holds pools for the pause of db, if it still lasts.
func (p *pauses) hold(db string, pools []keyedPool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if _, ok := p.by[db]; !ok {
		return
	}
	for _, kp := range pools {
		kp.p.Hold()
		p.held[db] = append(p.held[db], kp.p)
	}
}

// unholdLocked releases the pools the pause of db held; p.mu is held.
func (p *pauses) unholdLocked(db string) {
	for _, pl := range p.held[db] {
		pl.Unhold()
	}
	delete(p.held, db)
}

// pause starts a pause of db ("" for all); false if it is already paused.
func (p *pauses) pause(db string) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	if _, ok := p.by[db]; ok {
		return false
	}
	p.by[db] = make(chan struct{})
	p.on.Store(true)
	return true
}

// resume ends the pause of db; false if there was none.
func (p *pauses) resume(db string) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	ch, ok := p.by[db]
	if !ok {
		return false
	}
	close(ch)
	delete(p.by, db)
	p.unholdLocked(db)
	p.on.Store(len(p.by) > 0)
	return true
}

// endAll ends every pause, at shutdown: nothing may wait for a RESUME
// that will not come.
func (p *pauses) endAll() {
	p.mu.Lock()
	defer p.mu.Unlock()
	for db, ch := range p.by {
		close(ch)
		delete(p.by, db)
		p.unholdLocked(db)
	}
	p.on.Store(false)
}

// holding returns the pause that holds a client of db, or nil.
func (p *pauses) holding(db string) chan struct{} {
	if !p.on.Load() {
		return nil
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if ch, ok := p.by[""]; ok {
		return ch
	}
	return p.by[db]
}

// paused reports whether db (or everything) is paused, for SHOW DATABASES.
func (p *pauses) paused(db string) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	_, all := p.by[""]
	_, one := p.by[db]
	return all || one
}

// names are the databases paused by name ("" for a PAUSE of all).
func (p *pauses) names() []string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return slices.Collect(maps.Keys(p.by))
}

// errPausedTooLong is a request's error when the pause outlasts its
// acquire_timeout, as a full pool's does.
func errPausedTooLong(timeout time.Duration) error {
	return pgerr.New(pgerr.TooManyConnections,
		"pgninja is paused (PAUSE on the admin console) and was not resumed within pool.acquire_timeout (%s)", timeout)
}

// waitResumed holds a request of the client while its database is
// paused, counting against the same timeout as waiting for a server
// connection. ctx is the wait's, which a CancelRequest ends.
func (s *Session) waitResumed(ctx context.Context) error {
	ch := s.srv.pauses.holding(s.l.dbName)
	if ch == nil {
		return nil
	}
	timeout := s.st.cfg.Pool.AcquireTimeout
	t := time.NewTimer(timeout)
	defer t.Stop()
	s.mu.Lock()
	s.heldByPause = true
	s.mu.Unlock()
	defer func() {
		s.mu.Lock()
		s.heldByPause = false
		s.mu.Unlock()
	}()
	for ch != nil {
		select {
		case <-ch:
			if s.srv.draining.Load() {
				return pgerr.Fatal(pgerr.AdminShutdown, "terminating connection due to administrator command")
			}
		case <-ctx.Done():
			return context.Cause(ctx)
		case <-t.C:
			return errPausedTooLong(timeout)
		}
		// A PAUSE of everything may follow the RESUME of one database.
		ch = s.srv.pauses.holding(s.l.dbName)
	}
	return nil
}

// consolePoll is how often PAUSE and WAIT_CLOSE look whether what they
// wait for has happened.
const consolePoll = 20 * time.Millisecond

// consolePause runs PAUSE [db]: it returns once no client of db holds or
// is about to take a server connection, and the idle ones are closed. A
// cancel of the PAUSE (Ctrl-C in psql) resumes.
func (s *Session) consolePause(db string) error {
	if !s.srv.pauses.pause(db) {
		return pgerr.New(pgerr.ObjectNotInPrerequisiteState, "%s is paused already", pauseScope(db))
	}
	ctx := s.beginWait(time.Now())
	err := s.untilNoLeases(ctx, db)
	s.mu.Lock()
	s.endWait()
	s.mu.Unlock()
	if err != nil {
		s.srv.pauses.resume(db)
		if errors.Is(err, errWaitCancelled) {
			return pgerr.New(pgerr.QueryCanceled, "canceling PAUSE due to user request: %s runs again", pauseScope(db))
		}
		return err
	}
	pools := s.srv.poolsOf(db)
	s.srv.pauses.hold(db, pools)
	for _, kp := range pools {
		kp.p.Retire()
	}
	return nil
}

func pauseScope(db string) string {
	if db == "" {
		return "every database"
	}
	return "database " + db
}

// untilNoLeases waits until no client of db (every client for "") holds a
// server connection or waits for one other than by the pause. Clients
// that passed the pause's check just before it began are waiting for
// theirs, so they count.
func (s *Session) untilNoLeases(ctx context.Context, db string) error {
	return s.pollUntil(ctx, func() bool {
		for _, v := range s.srv.clientViews() {
			if !v.console && (db == "" || v.db == db) && (v.lease != nil || v.state == "waiting") {
				return false
			}
		}
		return true
	})
}

// pollUntil checks done every consolePoll until it holds, ctx (a console
// command's wait, which a cancel ends) ends, or pgninja shuts down.
func (s *Session) pollUntil(ctx context.Context, done func() bool) error {
	t := time.NewTicker(consolePoll)
	defer t.Stop()
	for !done() {
		if s.srv.draining.Load() {
			// Shutdown waits for this session; what it waits for is
			// being ended anyway.
			return pgerr.Fatal(pgerr.AdminShutdown, "terminating connection due to administrator command")
		}
		select {
		case <-t.C:
		case <-ctx.Done():
			return context.Cause(ctx)
		}
	}
	return nil
}

// poolsOf are the pools serving db ("" for all): those of its
// server-side database name.
func (srv *Server) poolsOf(db string) []keyedPool {
	var out []keyedPool
	var server string
	if db != "" {
		d, ok := srv.settings.Load().cfg.Database(db)
		if !ok {
			return nil
		}
		server = d.DBName
	}
	for _, kp := range srv.sortedPools() {
		if db == "" || kp.key.Database == server {
			out = append(out, kp)
		}
	}
	return out
}
