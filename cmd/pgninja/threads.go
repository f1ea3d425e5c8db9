package main

import (
	"log/slog"
	"os"
	"runtime"

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
type schedThreads struct {
	cpus   int  // the runtime's own choice at start: the CPUs this process may use
	envSet bool // GOMAXPROCS in the environment: the operator chose already
}

func newSchedThreads() schedThreads {
	return schedThreads{cpus: runtime.GOMAXPROCS(0), envSet: os.Getenv("GOMAXPROCS") != ""}
}

// want returns the thread count for setting (0: automatic); ok is false
// when the runtime's count should stand. backups: scheduled backups run
// in the process.
func (t schedThreads) want(setting int, backups bool) (n int, ok bool) {
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
func (t schedThreads) apply(cfg *config.Config, log *slog.Logger) {
	n, ok := t.want(cfg.Threads, cfg.Sidecar.Backup.Enabled)
	if !ok {
		return
	}
	if prev := runtime.GOMAXPROCS(n); prev != n {
		log.Info("scheduler threads", "threads", n, "cpus", t.cpus)
	}
}
