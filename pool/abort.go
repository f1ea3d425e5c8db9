package pool

import (
	"context"
	"sync"
)

// Abort ends a queued Acquire from another goroutine: a client's
// CancelRequest while it waits for a connection, say.
//
// A context could do that too, but a wait on one selects over the
// context's Done channel and the grant. In a busy transaction-mode pool
// most acquires queue, and that select (with its locks and sudogs) cost
// about a thousand instructions a lease. A wait that watches an Abort
// instead blocks on its grant channel alone; Fire sends it the ending.
type Abort struct {
	mu    sync.Mutex
	p     *Pool   // the pool whose queue holds w, while w waits
	w     *waiter // owned by this wait: it is not reused before detach
	cause error
}

type abortKey struct{}

// WithAbort returns ctx carrying a. A wait in the queue under it watches
// a and not ctx.Done(), so whoever cancels ctx must fire a as well;
// dialling still follows ctx.
func WithAbort(ctx context.Context, a *Abort) context.Context {
	return context.WithValue(ctx, abortKey{}, a)
}

func abortOf(ctx context.Context) *Abort {
	a, _ := ctx.Value(abortKey{}).(*Abort)
	return a
}

// Fire ends the queued wait under a, if there is one, and every wait
// that starts under a before Reset, with cause.
func (a *Abort) Fire(cause error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.cause = cause
	if a.p != nil {
		a.p.abortWaiter(a.w, cause)
	}
}

// Reset makes a usable again after Fire.
func (a *Abort) Reset() {
	a.mu.Lock()
	a.cause = nil
	a.mu.Unlock()
}

// attach records the queued w, or returns the cause a fired with.
func (a *Abort) attach(p *Pool, w *waiter) error {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.cause != nil {
		return a.cause
	}
	a.p, a.w = p, w
	return nil
}

// detach forgets w before it goes back for reuse, so that a late Fire
// cannot reach another acquire's wait.
func (a *Abort) detach() {
	a.mu.Lock()
	a.p, a.w = nil, nil
	a.mu.Unlock()
}

// abortWaiter takes w off the queue and sends it the cause; a w already
// off it has its grant (or timeout) on the way and keeps it.
func (p *Pool) abortWaiter(w *waiter, cause error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.dequeue(w) {
		w.ch <- grant{aborted: cause} // buffered, and nothing else sends to a queued waiter
	}
}

// waitOnGrant is wait's path for a context that is never done, with no
// reserve timer: the grant channel alone, and a's ending through it.
func (p *Pool) waitOnGrant(w *waiter, a *Abort, opts Options) (*Conn, bool, error) {
	if a != nil {
		if err := a.attach(p, w); err != nil {
			return p.giveUp(w, err, opts)
		}
		defer a.detach()
	}
	return p.received(<-w.ch, opts)
}
