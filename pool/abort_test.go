package pool

import (
	"context"
	"errors"
	"fmt"
	"sync/atomic"
	"testing"
	"time"
)

var errCancelled = errors.New("cancelled")

// TestAbortEnds covers a wait under an Abort, fired while queued and
// before it queued, with a context that is cancellable as a session's is.
func TestAbortEnds(t *testing.T) {
	for _, tc := range []struct {
		name        string
		firedBefore bool
	}{
		{"while queued", false},
		{"before the wait", true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var n atomic.Int32
			o := opts(1)
			o.AcquireTimeout = time.Minute
			p := New(Target{}, o, fakeDial(&n, nil))
			held := mustAcquire(t, p)
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			var a Abort
			if tc.firedBefore {
				a.Fire(errCancelled)
			}
			done := make(chan error, 1)
			go func() {
				c, err := p.Acquire(WithAbort(ctx, &a))
				if c != nil {
					p.Release(c, false)
				}
				done <- err
			}()
			if !tc.firedBefore {
				for p.Stats().Waiting != 1 {
					time.Sleep(time.Millisecond)
				}
				a.Fire(errCancelled)
			}
			select {
			case err := <-done:
				if !errors.Is(err, errCancelled) {
					t.Fatalf("Acquire returned %v, want the Abort's cause", err)
				}
			case <-time.After(5 * time.Second):
				t.Fatal("the Abort did not end the wait")
			}
			if w := p.Stats().Waiting; w != 0 {
				t.Fatalf("%d still queued", w)
			}
			// The pool serves on: the held connection goes to the next
			// waiter, and a reset Abort waits again.
			a.Reset()
			got := make(chan *Conn, 1)
			go func() {
				c, err := p.Acquire(WithAbort(ctx, &a))
				if err != nil {
					t.Error(err)
				}
				got <- c
			}()
			for p.Stats().Waiting != 1 {
				time.Sleep(time.Millisecond)
			}
			p.Release(held, false)
			if c := <-got; c != held {
				t.Fatalf("the next waiter got %p, want the released %p", c, held)
			}
		})
	}
}

// TestAbortRacingGrantLosesNothing fires Aborts while connections are
// handed to their waiters: each wait ends with a connection or the
// cause, never both or neither, and no connection goes missing.
func TestAbortRacingGrantLosesNothing(t *testing.T) {
	var n atomic.Int32
	o := opts(1)
	o.AcquireTimeout = time.Minute
	p := New(Target{}, o, fakeDial(&n, nil))
	for i := range 2000 {
		held := mustAcquire(t, p)
		var a Abort
		type result struct {
			c   *Conn
			err error
		}
		done := make(chan result, 1)
		go func() {
			c, err := p.Acquire(WithAbort(context.Background(), &a))
			done <- result{c, err}
		}()
		queued := time.Now().Add(5 * time.Second)
		for st := p.Stats(); st.Waiting != 1; st = p.Stats() {
			if time.Now().After(queued) {
				t.Fatalf("round %d: the acquire never queued: %+v", i, st)
			}
			time.Sleep(10 * time.Microsecond)
		}
		// Each round's own cause: a late Fire of an earlier round must not
		// reach this round's wait (its waiter may be the earlier one's,
		// reused).
		cause := fmt.Errorf("round %d: %w", i, errCancelled)
		go a.Fire(cause)
		p.Release(held, false)
		r := <-done
		switch {
		case r.c != nil && r.err == nil:
			p.Release(r.c, false)
		case r.c == nil && r.err == cause:
		default:
			t.Fatalf("round %d: Acquire returned %v, %v", i, r.c, r.err)
		}
		// The one connection is idle again.
		deadline := time.Now().Add(5 * time.Second)
		for st := p.Stats(); st.Idle != 1 || st.Total != 1 || st.Waiting != 0; st = p.Stats() {
			if time.Now().After(deadline) {
				t.Fatalf("round %d: pool left at %+v", i, st)
			}
			time.Sleep(10 * time.Microsecond)
		}
	}
}
