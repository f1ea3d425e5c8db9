package pool

import (
	"context"
	"runtime"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// benchmarkLending has clients goroutines lend and return connections of
// a pool of size on one scheduler thread, as pgninja runs: with more
// clients than connections most acquires queue, which is transaction
// mode's usual state under load (pgbench -c 64 on a pool of 20).
// Each client acquires under ctx(), as a session does under its own.
func benchmarkLending(b *testing.B, clients, size int, ctx func(*testing.B) context.Context) {
	var n atomic.Int32
	o := opts(size)
	o.AcquireTimeout = time.Minute
	p := New(Target{}, o, fakeDial(&n, nil))
	defer runtime.GOMAXPROCS(runtime.GOMAXPROCS(1))
	var left atomic.Int64
	left.Store(int64(b.N))
	var wg sync.WaitGroup
	b.ReportAllocs()
	b.ResetTimer()
	for range clients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			ctx := ctx(b)
			for left.Add(-1) >= 0 {
				c, err := p.Acquire(ctx)
				if err != nil {
					b.Error(err)
					return
				}
				runtime.Gosched() // the transaction
				p.Release(c, false)
				runtime.Gosched() // the client's think time
			}
		}()
	}
	wg.Wait()
}

func background(*testing.B) context.Context { return context.Background() }

// cancellable is a session's wait context before Abort: the queue selects
// over its Done channel and the grant.
func cancellable(b *testing.B) context.Context {
	ctx, cancel := context.WithCancel(context.Background())
	b.Cleanup(cancel)
	return ctx
}

// abortable is a session's wait context now: cancellable, and carrying
// the Abort the queue watches instead.
func abortable(b *testing.B) context.Context { return WithAbort(cancellable(b), new(Abort)) }

func BenchmarkLendingQueued64On20(b *testing.B) { benchmarkLending(b, 64, 20, background) }
func BenchmarkLendingFree64On64(b *testing.B)   { benchmarkLending(b, 64, 64, background) }
func BenchmarkLendingQueuedCancellable(b *testing.B) {
	benchmarkLending(b, 64, 20, cancellable)
}
func BenchmarkLendingQueuedAbortable(b *testing.B) { benchmarkLending(b, 64, 20, abortable) }
