package proxy

import (
	"context"
	"errors"
	"time"

	"github.com/ai-ninja/pgninja/internal/pgerr"
	"github.com/ai-ninja/pgninja/pool"
)

// A CancelRequest that arrives while its client waits for a server
// connection (the pool full, or its server restarting) ends the wait. The
// request never runs and is answered as PostgreSQL answers a cancelled
// statement. Left alone, the cancel would find no server to go to: the
// client would sit in the queue until acquire_timeout and then run the
// statement it gave up on (PgBouncer's long-standing complaint, its issue
// 1222).
//
// The wait's context lives on the session and is made anew only after a
// cancel used it, so a lease costs one uncontended lock more, and no
// allocation. The pool's queue watches the session's pool.Abort rather
// than the context (see pool/abort.go), so the cancel fires both.

// errWaitCancelled is the cause a CancelRequest gives the wait's context.
var errWaitCancelled = errors.New("pgninja: cancel request while waiting for a server connection")

// beginWait marks the session as waiting for a server connection and
// returns the context the wait runs under; since is when the client began
// to wait.
func (s *Session) beginWait(since time.Time) context.Context {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.waitCtx == nil || s.waitCtx.Err() != nil {
		s.waitCtx, s.waitStop = context.WithCancelCause(context.Background())
		s.leaseCtx = pool.WithAbort(s.waitCtx, &s.waitAbort)
		s.waitAbort.Reset()
	}
	s.waiting, s.waitSince = true, since
	return s.waitCtx
}

// endWait ends the wait that beginWait began. It reports whether a
// CancelRequest ended it; the caller holds s.mu, so that the end of the
// wait and the start of the lease are one step for cancel to see.
func (s *Session) endWait() (cancelled bool) {
	s.waiting = false
	return s.waitCtx != nil && context.Cause(s.waitCtx) == errWaitCancelled
}

// waitFailed is endWait for a wait that got no connection: err, or the
// cancellation in its place.
func (s *Session) waitFailed(err error) error {
	s.mu.Lock()
	cancelled := s.endWait()
	s.mu.Unlock()
	if cancelled {
		return cancelledWhileWaiting()
	}
	return err
}

// abandon gives back a connection leased for a request that was
// cancelled before it was sent; nothing of the client's reached it.
func abandon(c *pool.Conn) error {
	c.Pool().Release(c, false)
	return cancelledWhileWaiting()
}

// cancelWait ends the session's wait, if it is waiting; s.mu is held.
func (s *Session) cancelWait() {
	if s.waiting {
		s.waitStop(errWaitCancelled)
		s.waitAbort.Fire(errWaitCancelled)
	}
}

func cancelledWhileWaiting() error {
	return pgerr.New(pgerr.QueryCanceled, "canceling statement due to user request").
		WithDetail("pgninja: the statement was cancelled while it waited for a server connection, and did not run.")
}
