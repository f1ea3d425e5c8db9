package main

import (
	"context"
	"log/slog"
	"os"
	"runtime"
	"sync"
	"time"

	"github.com/ai-ninja/pgninja/config"
)

// schedThreads applies the threads setting to the Go scheduler.
//
// Go's default runs as many threads as there are CPUs. A proxy beside
// PostgreSQL (on a sidecar or the database host) gains little from that:
// it waits on sockets most of the time, and each extra thread that sleeps
// and wakes costs the kernel work that PostgreSQL and the clients pay for.
// On the 2-core bench machine one thread cut pgninja's CPU per
// transaction by a tenth or more in session and routing runs and raised
// their throughput by 5-10% in lab A/B runs (transaction mode: less CPU
// in most rounds, throughput level). PgBouncer runs one.
//
// Scheduled backups are the exception: they compress and encrypt inside
// the process, and on a single thread a backup would hold clients' turns
// for up to the scheduler's 10 ms time slice. With them enabled the
// automatic count is at least two, where the CPUs allow.
//
// A pool that clients queue for is the other. When most leases wait,
// every release wakes a queued client, and there is always a client's
// turn to run beside the one that released: on the bench machine two
// threads made more transactions than one with 64 clients on 20 server
// connections (5 of 6 paired rounds with the simple protocol, about 6%
// more; 5 of 6 with the extended one), where with 16 clients and no
// queue one thread made 7% more (5 of 6). The automatic count doubles,
// up to the CPUs, while clients queue, and comes back once they have
// not for a few seconds (follow).
type schedThreads struct {
	threadsEnv

	mu     sync.Mutex
	set    bool // the count is the proxy's (apply), not the runtime's
	base   int  // the count apply chose
	auto   bool // base is the automatic count, which queueing raises
	raised bool
	calm   int // intervals without queueing since the last one with
	last   leaseCounts
	primed bool // last holds an observation
	log    *slog.Logger
}

// threadsEnv is what the process started with.
type threadsEnv struct {
	cpus   int  // the runtime's own choice at start: the CPUs this process may use
	envSet bool // GOMAXPROCS in the environment: the operator chose already
}

// leaseCounts are the pools' totals since start.
type leaseCounts struct{ acquires, waits uint64 }

// Queueing, per interval of follow: at least queuedWaits leases waited,
// and at least a quarter of all leases; calmIntervals without it end it.
const (
	queuedWaits   = 100
	calmIntervals = 3
)

func newSchedThreads() *schedThreads {
	return &schedThreads{threadsEnv: threadsEnv{cpus: runtime.GOMAXPROCS(0), envSet: os.Getenv("GOMAXPROCS") != ""},
		log: slog.Default()}
}

// want returns the thread count for setting (0: automatic); ok is false
// when the runtime's count should stand. backups: scheduled backups run
// in the process.
func (t threadsEnv) want(setting int, backups bool) (n int, ok bool) {
	switch {
	case setting > 0:
		return setting, true
	case t.envSet:
		return 0, false
	}
	n = max(1, t.cpus/2)
	if backups {
		n = max(n, min(2, t.cpus))
	}
	return n, true
}

// apply sets the count for cfg; it is safe to call again on reload.
func (t *schedThreads) apply(cfg *config.Config, log *slog.Logger) {
	n, ok := t.want(cfg.Threads, cfg.Sidecar.Backup.Enabled)
	t.mu.Lock()
	defer t.mu.Unlock()
	t.log = log
	t.set, t.base, t.auto = ok, n, ok && cfg.Threads <= 0
	t.useLocked()
}

// useLocked gives the runtime the count for the current state.
func (t *schedThreads) useLocked() {
	if !t.set {
		return
	}
	n := t.base
	if t.auto && t.raised {
		n = max(n, min(t.cpus, 2*t.base))
	}
	if prev := runtime.GOMAXPROCS(n); prev != n {
		t.log.Info("scheduler threads", "threads", n, "cpus", t.cpus, "queueing", t.auto && t.raised)
	}
}

// follow watches the pools' lease counts every interval until ctx ends,
// raising the automatic count while clients queue.
func (t *schedThreads) follow(ctx context.Context, every time.Duration, counts func() leaseCounts) {
	tick := time.NewTicker(every)
	defer tick.Stop()
	t.observe(counts())
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
			t.observe(counts())
		}
	}
}

// observe takes the counts at the end of an interval.
func (t *schedThreads) observe(c leaseCounts) {
	t.mu.Lock()
	defer t.mu.Unlock()
	prev, primed := t.last, t.primed
	t.last, t.primed = c, true
	if !primed || c.acquires < prev.acquires || c.waits < prev.waits {
		return // the first, or a pool went away: no interval to judge
	}
	acquires, waits := c.acquires-prev.acquires, c.waits-prev.waits
	queued := waits >= queuedWaits && 4*waits >= acquires
	switch {
	case queued:
		t.calm = 0
		if !t.raised {
			t.raised = true
			t.useLocked()
		}
	case t.raised:
		if t.calm++; t.calm >= calmIntervals {
			t.raised, t.calm = false, 0
			t.useLocked()
		}
	}
}
