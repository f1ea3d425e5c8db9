package router

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/ai-ninja/pgninja/internal/libpq"
	"github.com/prometheus/client_golang/prometheus"
)

// HealthTarget is one server to watch, as configured.
type HealthTarget struct {
	Name, Host string
	Port       int
	// Primary is the configured role; checks may find otherwise.
	Primary bool
	// Weight is the configured share of reads, kept as is.
	Weight int
}

// HealthConfig tunes a HealthChecker. Zero durations take the defaults
// noted on each field.
type HealthConfig struct {
	// Interval (default 1s) is how often a backend that failed is tried
	// again. Healthy backends are checked every LSNInterval, because one
	// query answers both the role and the replay position.
	Interval time.Duration
	// LSNInterval (default 100ms) is how often replay positions are read.
	LSNInterval time.Duration
	// User, Password and Database log the checker in.
	User, Password, Database string
	// SSLMode is libpq's sslmode towards the servers (default prefer),
	// SSLFiles the files its TLS uses.
	SSLMode  string
	SSLFiles libpq.SSLFiles
	// ConnectTimeout (default 5s) bounds opening a connection and also
	// each health query: a server that does not answer within it is
	// unhealthy. It delays only that server's own checks.
	ConnectTimeout time.Duration
	// MaxLagBytes and MaxLag take a replica out of rotation while it lags
	// more; 0 means no limit.
	MaxLagBytes int64
	MaxLag      time.Duration
}

func (c HealthConfig) withDefaults() HealthConfig {
	if c.Interval <= 0 {
		c.Interval = time.Second
	}
	if c.LSNInterval <= 0 {
		c.LSNInterval = 100 * time.Millisecond
	}
	if c.ConnectTimeout <= 0 {
		c.ConnectTimeout = 5 * time.Second
	}
	return c
}

// HealthChecker keeps a Backends set current: whether each server is up,
// whether it is in recovery (so promotions and demotions are noticed),
// which one takes writes, and how far each replica lags.
//
// Each backend is polled by its own goroutine over one kept-open
// connection, and every answer republishes the whole set at once
// (Backends.Replace), so a dead or hung server never holds up the others'
// replay positions, and the router never sees two primaries or none
// halfway through a switch.
type HealthChecker struct {
	backends *Backends
	tracker  *LSNTracker // may be nil
	log      *slog.Logger
	failures *prometheus.CounterVec

	// ref is the chosen primary's latest position, read by replica probes
	// before they query (see backendProbe.replayLag).
	ref atomic.Pointer[lsnSample]

	mu sync.Mutex // guards the fields below and orders publishes
	// cfg, targets, probes and latest change together (Reconfigure);
	// probes and latest are in targets' order.
	cfg         HealthConfig
	targets     []HealthTarget
	probes      []*backendProbe
	latest      []backendObservation
	lastPrimary string // the last primary chosen, kept through outages
	pruned      LSN
	published   []ReplicaState // nil until the first publish
	// running is Run's context while it runs, under which every probe
	// has a poller; pollers counts them.
	running context.Context
	pollers sync.WaitGroup
}

// NewHealthChecker watches targets and publishes what it finds to b; tr,
// if not nil, is pruned after each update. Metrics go to reg (nil: none).
// The per-backend health and lag gauges are already exported from the
// Backends snapshot by NewMetrics; this adds
// pgninja_health_check_failures_total{backend}.
//
// Nothing is checked until Run or CheckNow. Until a backend has answered,
// its entry stays as b had it (absent: unhealthy); calling CheckNow once
// before serving makes the first routing decisions informed ones.
func NewHealthChecker(b *Backends, tr *LSNTracker, targets []HealthTarget, cfg HealthConfig, log *slog.Logger, reg prometheus.Registerer) *HealthChecker {
	cfg = cfg.withDefaults()
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	h := &HealthChecker{
		backends: b,
		tracker:  tr,
		cfg:      cfg,
		log:      log,
		targets:  append([]HealthTarget(nil), targets...),
		latest:   make([]backendObservation, len(targets)),
	}
	h.failures = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "pgninja_health_check_failures_total",
		Help: "Health checks that could not connect to a backend or run the check query.",
	}, []string{"backend"})
	if reg != nil {
		if err := reg.Register(h.failures); err != nil {
			var are prometheus.AlreadyRegisteredError
			if errors.As(err, &are) {
				if existing, ok := are.ExistingCollector.(*prometheus.CounterVec); ok {
					h.failures = existing
				}
			} else {
				log.Warn("health check metrics not registered", "err", err)
			}
		}
	}
	for _, t := range h.targets {
		h.probes = append(h.probes, h.newProbe(t, cfg))
	}
	return h
}

func (h *HealthChecker) newProbe(t HealthTarget, cfg HealthConfig) *backendProbe {
	p := newBackendProbe(t, cfg)
	p.failures = h.failures.WithLabelValues(t.Name)
	return p
}

// Run checks every backend until ctx ends, then closes the connections.
// Call it once, typically in its own goroutine.
func (h *HealthChecker) Run(ctx context.Context) {
	h.mu.Lock()
	h.running = ctx
	for _, p := range h.probes {
		h.startPoller(p)
	}
	h.mu.Unlock()
	<-ctx.Done()
	h.mu.Lock()
	h.running = nil // a Reconfigure from now on starts no poller
	h.mu.Unlock()
	h.pollers.Wait()
	h.Close()
}

// startPoller runs p's checks until Run's context ends or p is dropped by
// Reconfigure; h.mu is held, and Run is running.
func (h *HealthChecker) startPoller(p *backendProbe) {
	ctx, stop := context.WithCancel(h.running)
	p.stop = stop
	h.pollers.Add(1)
	go func() {
		defer h.pollers.Done()
		h.poll(ctx, p)
	}()
}

// poll checks p every LSNInterval, or every Interval while it is failing
// (no point hammering a dead server with connection attempts).
func (h *HealthChecker) poll(ctx context.Context, p *backendProbe) {
	t := time.NewTimer(0)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		err := h.check(ctx, p)
		h.mu.Lock()
		wait := h.cfg.LSNInterval
		if err != nil {
			wait = h.cfg.Interval
		}
		h.mu.Unlock()
		t.Reset(wait)
	}
}

// CheckNow runs one check of every backend, in parallel, and publishes
// each answer. It returns once all have answered (each within
// ConnectTimeout, plus any wait for a check of the same backend already
// running); the error joins the failures of backends that did not answer.
func (h *HealthChecker) CheckNow(ctx context.Context) error {
	h.mu.Lock()
	probes := slices.Clone(h.probes)
	h.mu.Unlock()
	errs := make([]error, len(probes))
	var wg sync.WaitGroup
	for i, p := range probes {
		wg.Go(func() {
			if err := h.check(ctx, p); err != nil {
				errs[i] = fmt.Errorf("%s: %w", p.target.Name, err)
			}
		})
	}
	wg.Wait()
	return errors.Join(errs...)
}

// check observes backend p and publishes the answer. An answer cut short
// by ctx (shutdown) says nothing about the server and is not published,
// and neither is one from a probe Reconfigure has dropped meanwhile.
func (h *HealthChecker) check(ctx context.Context, p *backendProbe) error {
	if err := p.lock(ctx); err != nil {
		return err
	}
	defer p.unlock()
	var ref lsnSample
	if r := h.ref.Load(); r != nil {
		ref = *r
	}
	o := p.observe(ctx, ref)
	if ctx.Err() != nil {
		return ctx.Err()
	}
	if !o.up {
		p.failures.Inc()
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	if i := slices.Index(h.probes, p); i >= 0 {
		h.latest[i] = o
		h.republish()
	}
	return o.err
}

// publish records backend i's backendObservation and installs the new set.
func (h *HealthChecker) publish(i int, o backendObservation) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.latest[i] = o
	h.republish()
}

// republish decides the backend states from the latest observations and
// installs them; h.mu is held.
func (h *HealthChecker) republish() {
	states, why := decideRoles(h.targets, h.latest, h.lastPrimary,
		roleLimits{maxLagBytes: h.cfg.MaxLagBytes, maxLag: h.cfg.MaxLag, pruned: h.pruned})
	h.keepUnchecked(states)
	for j, st := range states {
		if st.Primary {
			h.lastPrimary = st.Name
			h.ref.Store(&lsnSample{lsn: h.latest[j].lsn, at: h.latest[j].at})
			if h.tracker != nil {
				h.tracker.Settle(h.latest[j].lsn, h.latest[j].at)
			}
		}
	}
	if err := h.backends.Replace(states); err != nil {
		// Only duplicate names or too many targets: a configuration error.
		h.log.Error("health check cannot publish backends", "err", err)
		return
	}
	h.logChanges(states, why)
	h.published = states
	// Prune on every publish, not only when the minimum moves: commits
	// noted since the last call may already be everywhere.
	if m := h.backends.Snapshot().MinReplayLSN(); m > 0 && h.tracker != nil {
		h.tracker.Prune(m)
		h.pruned = max(h.pruned, m)
	}
}

// keepUnchecked leaves backends not heard from yet as the caller seeded
// them in Backends — typically the configured primary healthy, so writes
// flow before its first check — instead of publishing them unhealthy
// because another backend answered first. A seeded primary yields to one
// the checks have chosen.
func (h *HealthChecker) keepUnchecked(states []ReplicaState) {
	chosen := false
	for _, st := range states {
		chosen = chosen || st.Primary
	}
	snap := h.backends.Snapshot()
	for i := range states {
		if !h.latest[i].at.IsZero() {
			continue
		}
		if seeded, ok := snap.Get(states[i].Name); ok {
			seeded.Primary = seeded.Primary && !chosen
			states[i] = seeded
		}
	}
}

// logChanges logs role and health transitions, not every check.
// Backends not heard from yet are skipped: "not checked" is no news.
func (h *HealthChecker) logChanges(states []ReplicaState, why []string) {
	for i, st := range states {
		if st.CheckedAt.IsZero() {
			continue
		}
		// By name: a reload may have changed the set since.
		if j := slices.IndexFunc(h.published, func(o ReplicaState) bool { return o.Name == st.Name }); j >= 0 {
			old := h.published[j]
			if !old.CheckedAt.IsZero() && old.Healthy == st.Healthy &&
				old.Primary == st.Primary && old.InRecovery == st.InRecovery {
				continue
			}
		}
		attrs := []any{"backend", st.Name, "healthy", st.Healthy, "primary", st.Primary, "in_recovery", st.InRecovery}
		level := slog.LevelInfo
		if why[i] != "" {
			attrs = append(attrs, "reason", why[i])
			level = slog.LevelWarn
		}
		if st.Primary != h.targets[i].Primary && st.Healthy {
			attrs = append(attrs, "configured_primary", h.targets[i].Primary)
			level = slog.LevelWarn
		}
		h.log.Log(context.Background(), level, "backend state changed", attrs...)
	}
}

// Close closes the kept-open connections (Run does so when it returns).
// A later check opens new ones.
func (h *HealthChecker) Close() {
	h.mu.Lock()
	probes := slices.Clone(h.probes)
	h.mu.Unlock()
	for _, p := range probes {
		p.sem <- struct{}{}
		p.close()
		<-p.sem
	}
}
