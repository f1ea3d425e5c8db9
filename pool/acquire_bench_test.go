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
func benchmarkLending(b *testing.B, clients, size int) {
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
			for left.Add(-1) >= 0 {
				c, err := p.Acquire(context.Background())
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

func BenchmarkLendingQueued64On20(b *testing.B) { benchmarkLending(b, 64, 20) }
func BenchmarkLendingFree64On64(b *testing.B)   { benchmarkLending(b, 64, 64) }
