package main

import (
	"log/slog"
	"runtime"
	"testing"

	"github.com/ai-ninja/pgninja/config"
)

func TestSchedThreadsWant(t *testing.T) {
	for _, c := range []struct {
		name    string
		t       threadsEnv
		setting int
		backups bool
		n       int
		ok      bool
	}{
		{"auto halves the CPUs", threadsEnv{cpus: 8}, 0, false, 4, true},
		{"auto rounds down", threadsEnv{cpus: 3}, 0, false, 1, true},
		{"auto keeps one thread", threadsEnv{cpus: 1}, 0, false, 1, true},
		{"backups get a second thread", threadsEnv{cpus: 2}, 0, true, 2, true},
		{"backups on one CPU stay at one", threadsEnv{cpus: 1}, 0, true, 1, true},
		{"backups add nothing to half of many CPUs", threadsEnv{cpus: 8}, 0, true, 4, true},
		{"a setting wins", threadsEnv{cpus: 8}, 6, false, 6, true},
		{"a setting wins over backups", threadsEnv{cpus: 2}, 1, true, 1, true},
		{"a setting may exceed the CPUs", threadsEnv{cpus: 2}, 4, false, 4, true},
		{"GOMAXPROCS in the environment wins over auto", threadsEnv{cpus: 8, envSet: true}, 0, true, 0, false},
		{"a setting wins over GOMAXPROCS", threadsEnv{cpus: 8, envSet: true}, 2, false, 2, true},
	} {
		t.Run(c.name, func(t *testing.T) {
			n, ok := c.t.want(c.setting, c.backups)
			if n != c.n || ok != c.ok {
				t.Errorf("want(%d, %v) = %d, %v; want %d, %v", c.setting, c.backups, n, ok, c.n, c.ok)
			}
		})
	}
}

// The automatic count doubles while clients queue for server
// connections and comes back after calmIntervals without queueing.
func TestSchedThreadsFollowQueueing(t *testing.T) {
	defer runtime.GOMAXPROCS(runtime.GOMAXPROCS(0))
	type step struct {
		acquires, waits uint64
		threads         int // GOMAXPROCS after the step
	}
	for _, c := range []struct {
		name    string
		env     threadsEnv
		setting int
		steps   []step
	}{
		{"queueing raises, calm lowers", threadsEnv{cpus: 2}, 0, []step{
			{0, 0, 1}, {1000, 800, 2}, {2000, 1600, 2}, {3000, 1600, 2}, {4000, 1600, 2}, {5000, 1600, 1}}},
		{"queueing again resets the calm", threadsEnv{cpus: 2}, 0, []step{
			{0, 0, 1}, {1000, 800, 2}, {2000, 800, 2}, {3000, 800, 2}, {4000, 1600, 2}, {5000, 1600, 2}, {6000, 1600, 2}, {7000, 1600, 1}}},
		{"a few waits are no queue", threadsEnv{cpus: 2}, 0, []step{{0, 0, 1}, {200, 99, 1}}},
		{"waits under a quarter of leases are no queue", threadsEnv{cpus: 2}, 0, []step{{0, 0, 1}, {100000, 20000, 1}}},
		{"a pool gone is no interval", threadsEnv{cpus: 2}, 0, []step{{5000, 4000, 1}, {100, 10, 1}, {1100, 900, 2}}},
		{"up to the CPUs", threadsEnv{cpus: 3}, 0, []step{{0, 0, 1}, {1000, 800, 2}}},
		{"half of many CPUs doubles to all", threadsEnv{cpus: 8}, 0, []step{{0, 0, 4}, {1000, 800, 8}}},
		{"one CPU stays at one", threadsEnv{cpus: 1}, 0, []step{{0, 0, 1}, {1000, 800, 1}}},
		{"a setting stands", threadsEnv{cpus: 2}, 1, []step{{0, 0, 1}, {1000, 800, 1}}},
	} {
		t.Run(c.name, func(t *testing.T) {
			th := &schedThreads{threadsEnv: c.env, log: slog.New(slog.DiscardHandler)}
			th.apply(&config.Config{Threads: c.setting}, th.log)
			for i, s := range c.steps {
				th.observe(leaseCounts{s.acquires, s.waits})
				if got := runtime.GOMAXPROCS(0); got != s.threads {
					t.Fatalf("step %d (%d leases, %d waits): %d threads, want %d", i, s.acquires, s.waits, got, s.threads)
				}
			}
		})
	}
}

// With GOMAXPROCS in the environment and no setting, the runtime's
// count stands, queueing or not.
func TestSchedThreadsLeaveTheEnvironment(t *testing.T) {
	defer runtime.GOMAXPROCS(runtime.GOMAXPROCS(3))
	th := &schedThreads{threadsEnv: threadsEnv{cpus: 3, envSet: true}, log: slog.New(slog.DiscardHandler)}
	th.apply(&config.Config{}, th.log)
	th.observe(leaseCounts{})
	th.observe(leaseCounts{1000, 800})
	if got := runtime.GOMAXPROCS(0); got != 3 {
		t.Fatalf("%d threads, want the environment's 3", got)
	}
}
