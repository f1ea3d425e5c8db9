package proxy

import (
	"sync"
	"sync/atomic"
)

// workers runs a function on goroutines that outlive one call.
//
// A new goroutine starts with a small stack, and a client's login grows
// it several times over, each time by copying it; under
// connect-per-transaction load (pgbench -C) the copies and the
// goroutine's creation were a tenth of the proxy's CPU. A worker that
// has served one client keeps its grown stack for the next.
//
// At most maxIdle workers wait for work; the others end. Idle workers
// wait without a timer, so taking one costs a channel hand-off only.
type workers[T any] struct {
	run     func(T)
	work    chan T // unbuffered: a send succeeds only when a worker waits
	quit    chan struct{}
	stop    sync.Once
	idle    atomic.Int32
	maxIdle int32
	spawned atomic.Int64 // workers started, for tests
}

func newWorkers[T any](maxIdle int, run func(T)) *workers[T] {
	return &workers[T]{run: run, work: make(chan T), quit: make(chan struct{}), maxIdle: int32(maxIdle)}
}

// Go runs w.run(v) on an idle worker, or on a new one when none waits.
func (w *workers[T]) Go(v T) {
	select {
	case w.work <- v:
	default:
		w.spawned.Add(1)
		go w.loop(v)
	}
}

func (w *workers[T]) loop(v T) {
	for {
		w.run(v)
		var zero T
		v = zero // nothing of the last call stays reachable while idle
		if w.idle.Add(1) > w.maxIdle {
			w.idle.Add(-1)
			return
		}
		select {
		case v = <-w.work:
			w.idle.Add(-1)
		case <-w.quit:
			w.idle.Add(-1)
			return
		}
	}
}

// Stop ends the idle workers, and each busy one when its call returns.
// Go still works after it, on a goroutine of its own.
func (w *workers[T]) Stop() { w.stop.Do(func() { close(w.quit) }) }
