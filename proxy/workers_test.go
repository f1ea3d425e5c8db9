package proxy

import (
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"
)

// waitFor polls cond for up to two seconds.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(2 * time.Second); time.Now().Before(deadline); time.Sleep(time.Millisecond) {
		if cond() {
			return
		}
	}
	t.Fatalf("timed out waiting for %s", what)
}

func TestWorkersRunEachValueOnce(t *testing.T) {
	var mu sync.Mutex
	seen := map[int]int{}
	var wg sync.WaitGroup
	w := newWorkers(4, func(v int) {
		mu.Lock()
		seen[v]++
		mu.Unlock()
		wg.Done()
	})
	defer w.Stop()
	const n = 1000
	wg.Add(n)
	for i := range n {
		w.Go(i)
	}
	wg.Wait()
	for i := range n {
		if seen[i] != 1 {
			t.Fatalf("value %d ran %d times", i, seen[i])
		}
	}
}

func TestWorkersKeepAtMostMaxIdle(t *testing.T) {
	for _, tc := range []struct {
		name          string
		maxIdle, busy int
		wantIdle      int32
	}{
		{"fewer busy than the bound", 8, 3, 3},
		{"more busy than the bound", 2, 6, 2},
		{"no idle workers", 0, 4, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			release := make(chan struct{})
			var started, done sync.WaitGroup
			w := newWorkers(tc.maxIdle, func(struct{}) {
				started.Done()
				<-release
				done.Done()
			})
			started.Add(tc.busy)
			done.Add(tc.busy)
			for range tc.busy {
				w.Go(struct{}{}) // nobody idles yet: each starts a worker
			}
			started.Wait()
			close(release)
			done.Wait()
			waitFor(t, "workers to settle", func() bool { return w.idle.Load() == tc.wantIdle })

			w.Stop()
			waitFor(t, "idle workers to end", func() bool { return w.idle.Load() == 0 })
		})
	}
}

// An idle worker takes the next value: no new goroutine is started while
// one waits.
func TestWorkersReuseAnIdleWorker(t *testing.T) {
	ran := make(chan int)
	w := newWorkers(1, func(v int) { ran <- v })
	defer w.Stop()
	for i := range 20 {
		w.Go(i)
		if got := <-ran; got != i {
			t.Fatalf("ran %d, want %d", got, i)
		}
		// Counted idle, it may not have reached its select yet, and a
		// value sent before then starts another worker: wait until the
		// runtime shows it blocked there.
		waitFor(t, "the worker to idle", func() bool { return w.idle.Load() == 1 && workerBlocked() })
	}
	if n := w.spawned.Load(); n != 1 {
		t.Fatalf("%d workers started for 20 sequential values, want 1", n)
	}
}

// workerBlocked reports whether some worker goroutine is blocked in the
// select of its loop, as the runtime's goroutine dump shows it.
func workerBlocked() bool {
	buf := make([]byte, 1<<20)
	buf = buf[:runtime.Stack(buf, true)]
	for _, g := range strings.Split(string(buf), "\n\n") {
		if strings.Contains(g, "[select") && strings.Contains(g, "proxy.(*workers[") && strings.Contains(g, "]).loop(") {
			return true
		}
	}
	return false
}
