package router

import (
	"context"
	"errors"
	"log/slog"
	"net"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ai-ninja/pgninja/internal/testbed"
	"github.com/prometheus/client_golang/prometheus"
)

// --- role rules, no network ---

func TestDecideRoles(t *testing.T) {
	targets := []HealthTarget{
		{Name: "p", Primary: true, Weight: 0},
		{Name: "r1", Weight: 3},
		{Name: "r2", Weight: 1},
	}
	down := backendObservation{err: errors.New("connection refused"), at: time.Unix(1, 0)}
	writable := func(lsn LSN) backendObservation { return backendObservation{up: true, at: time.Unix(1, 0), lsn: lsn} }
	replica := func(lsn LSN, lag time.Duration) backendObservation {
		return backendObservation{up: true, at: time.Unix(1, 0), inRecovery: true, lsn: lsn, lag: lag}
	}
	noRef := func(o backendObservation) backendObservation { o.noRef = true; return o }

	// want: name:code, P = primary, R = replica in rotation (healthy, in
	// recovery), W = healthy and writable but not the primary, - = unhealthy.
	tests := []struct {
		name     string
		obs      []backendObservation
		prev     string
		lim      roleLimits
		want     string
		lagBytes map[string]int64
	}{
		{name: "normal", obs: []backendObservation{writable(1000), replica(900, 0), replica(1000, 0)},
			want: "p:P r1:R r2:R", lagBytes: map[string]int64{"r1": 100, "r2": 0}},
		{name: "replica ahead of the primary's sample is not negative lag",
			obs:  []backendObservation{writable(1000), replica(1200, 0), replica(1000, 0)},
			want: "p:P r1:R r2:R", lagBytes: map[string]int64{"r1": 0}},
		{name: "not checked yet", obs: make([]backendObservation, 3), want: "p:- r1:- r2:-"},
		{name: "replica down", obs: []backendObservation{writable(1000), down, replica(1000, 0)},
			want: "p:P r1:- r2:R"},
		{name: "primary down, replicas keep reads, no primary",
			obs:  []backendObservation{down, replica(900, 0), replica(1000, 0)},
			want: "p:- r1:R r2:R", lagBytes: map[string]int64{"r1": 0, "r2": 0}},
		{name: "primary down, replica promoted", obs: []backendObservation{down, replica(900, 0), writable(1000)},
			want: "p:- r1:R r2:P", lagBytes: map[string]int64{"r1": 100}},
		{name: "primary demoted, replica promoted", obs: []backendObservation{replica(1000, 0), writable(1100), replica(1100, 0)},
			want: "p:R r1:P r2:R", lagBytes: map[string]int64{"p": 100}},
		{name: "primary demoted, nothing writable", obs: []backendObservation{replica(1000, 0), replica(1000, 0), down},
			want: "p:R r1:R r2:-"},
		{name: "split brain at start: configured primary keeps writes",
			obs:  []backendObservation{writable(1000), writable(1000), replica(1000, 0)},
			want: "p:P r1:W r2:R"},
		{name: "old primary back unfenced after failover: writes stay on the new one",
			obs: []backendObservation{writable(1000), writable(1200), replica(1200, 0)}, prev: "r1",
			want: "p:W r1:P r2:R"},
		{name: "previous primary gone: configured primary again",
			obs: []backendObservation{writable(1000), down, replica(1000, 0)}, prev: "r1",
			want: "p:P r1:- r2:R"},
		{name: "lag bytes over the limit", lim: roleLimits{maxLagBytes: 99},
			obs: []backendObservation{writable(1000), replica(900, 0), replica(1000, 0)}, want: "p:P r1:- r2:R"},
		{name: "lag bytes at the limit", lim: roleLimits{maxLagBytes: 100},
			obs: []backendObservation{writable(1000), replica(900, 0), replica(1000, 0)}, want: "p:P r1:R r2:R"},
		{name: "lag seconds over the limit", lim: roleLimits{maxLag: time.Second},
			obs:  []backendObservation{writable(1000), replica(900, 2*time.Second), replica(1000, time.Second)},
			want: "p:P r1:- r2:R"},
		{name: "no limits", obs: []backendObservation{writable(1 << 40), replica(1, time.Hour), replica(2, 0)},
			want: "p:P r1:R r2:R"},
		{name: "behind the pruned position", lim: roleLimits{pruned: 950},
			obs: []backendObservation{writable(1000), replica(900, 0), replica(950, 0)}, want: "p:P r1:- r2:R"},
		{name: "pruned position from a rebuilt cluster is ignored", lim: roleLimits{pruned: 5000},
			obs: []backendObservation{writable(1000), replica(900, 0), replica(950, 0)}, want: "p:P r1:R r2:R"},
		{name: "first check: caught-up replica's commit age is not lag", lim: roleLimits{maxLag: time.Second},
			obs:  []backendObservation{writable(1000), noRef(replica(1000, time.Minute)), noRef(replica(900, time.Minute))},
			want: "p:P r1:R r2:-"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			states, why := decideRoles(targets, tc.obs, tc.prev, tc.lim)
			var got []string
			for i, st := range states {
				code := "-"
				switch {
				case st.Primary:
					code = "P"
				case st.Healthy && st.InRecovery:
					code = "R"
				case st.Healthy:
					code = "W"
				}
				got = append(got, st.Name+":"+code)
				if st.Name != targets[i].Name || st.Weight != targets[i].Weight {
					t.Errorf("%s: name/weight %q/%d, want %q/%d", st.Name, st.Name, st.Weight, targets[i].Name, targets[i].Weight)
				}
				if (code == "-" || code == "W") && why[i] == "" {
					t.Errorf("%s: %s without a reason", st.Name, code)
				}
				if want, ok := tc.lagBytes[st.Name]; ok && st.LagBytes != want {
					t.Errorf("%s: LagBytes %d, want %d", st.Name, st.LagBytes, want)
				}
			}
			if g := strings.Join(got, " "); g != tc.want {
				t.Errorf("roles %q, want %q (why %q)", g, tc.want, why)
			}
			// The published snapshot agrees: at most one primary, never
			// one in recovery.
			b, err := NewBackends(states...)
			if err != nil {
				t.Fatal(err)
			}
			p, ok := b.Snapshot().Primary()
			wantP, hasP := "", strings.Contains(tc.want, ":P")
			for _, f := range strings.Fields(tc.want) {
				if strings.HasSuffix(f, ":P") {
					wantP = strings.TrimSuffix(f, ":P")
				}
			}
			if ok != hasP || p.Name != wantP || p.InRecovery {
				t.Errorf("snapshot primary %q (ok %v, in recovery %v), want %q", p.Name, ok, p.InRecovery, wantP)
			}
		})
	}
}

func TestReplayLag(t *testing.T) {
	t0 := time.Unix(1000, 0)
	var p backendProbe
	// No primary sample yet: the query's figure stands (clamped at 0).
	if got := p.replayLag(50, time.Minute, lsnSample{}, t0); got != time.Minute {
		t.Errorf("no ref: %v, want 1m", got)
	}
	if got := p.replayLag(50, -time.Second, lsnSample{}, t0); got != 0 {
		t.Errorf("clock skew: %v, want 0", got)
	}
	// Caught up with the primary: 0, however old the last replayed commit.
	if got := p.replayLag(100, time.Hour, lsnSample{lsn: 100, at: t0}, t0.Add(10*time.Millisecond)); got != 0 {
		t.Errorf("caught up: %v, want 0", got)
	}
	// First write after an idle hour, not replayed yet: behind by the time
	// since it was last caught up, not by the hour.
	got := p.replayLag(100, time.Hour, lsnSample{lsn: 200, at: t0.Add(time.Second)}, t0.Add(1500*time.Millisecond))
	if got != 1500*time.Millisecond {
		t.Errorf("after idle: %v, want 1.5s", got)
	}
	// Really behind: the query's smaller figure wins.
	if got := p.replayLag(100, 2*time.Second, lsnSample{lsn: 300, at: t0.Add(time.Hour)}, t0.Add(time.Hour)); got != 2*time.Second {
		t.Errorf("behind: %v, want 2s", got)
	}
}

// A backend not checked yet keeps the state the caller seeded, so the
// first answer from a replica does not take the primary away; once checks
// choose a primary, the seeded one yields.
func TestHealthCheckerKeepsSeededStateUntilChecked(t *testing.T) {
	targets := []HealthTarget{{Name: "p", Primary: true}, {Name: "r", Weight: 1}, {Name: "r2", Weight: 1}}
	b, err := NewBackends(ReplicaState{Name: "p", Primary: true, Healthy: true}, ReplicaState{Name: "r", Weight: 1})
	if err != nil {
		t.Fatal(err)
	}
	h := NewHealthChecker(b, nil, targets, HealthConfig{}, nil, nil)
	h.publish(1, backendObservation{up: true, at: time.Now(), inRecovery: true, lsn: 100})
	snap := b.Snapshot()
	if p, ok := snap.Primary(); !ok || p.Name != "p" {
		t.Fatalf("seeded primary lost after a replica's check: %+v", snap.States())
	}
	if r, _ := snap.Get("r"); !r.Healthy || !r.InRecovery || r.ReplayLSN != 100 {
		t.Errorf("checked replica %+v", r)
	}
	if r2, ok := snap.Get("r2"); !ok || r2.Healthy {
		t.Errorf("unseeded, unchecked r2: %+v (present %v), want unhealthy", r2, ok)
	}
	// r2 turns out promoted: it becomes the only primary.
	h.publish(2, backendObservation{up: true, at: time.Now(), lsn: 200})
	snap = b.Snapshot()
	if p, ok := snap.Primary(); !ok || p.Name != "r2" {
		t.Fatalf("primary %+v (ok %v), want r2", p, ok)
	}
	if p, _ := snap.Get("p"); p.Primary {
		t.Errorf("seeded primary still marked primary: %+v", p)
	}
}

// --- against the real primary and replica ---

func healthBedTarget(t *testing.T, name, addr string, primary bool, weight int) HealthTarget {
	t.Helper()
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		t.Fatal(err)
	}
	n, err := strconv.Atoi(port)
	if err != nil {
		t.Fatal(err)
	}
	return HealthTarget{Name: name, Host: host, Port: n, Primary: primary, Weight: weight}
}

func healthBedTargets(t *testing.T, env *testbed.Env) []HealthTarget {
	return []HealthTarget{
		healthBedTarget(t, "primary", env.Primary, true, 0),
		healthBedTarget(t, "replica", env.Replica, false, 1),
	}
}

func healthBedConfig(env *testbed.Env) HealthConfig {
	return HealthConfig{
		Interval: 200 * time.Millisecond, LSNInterval: 50 * time.Millisecond,
		User: env.SuperUser, Password: env.SuperPass, Database: "postgres",
		ConnectTimeout: 3 * time.Second,
	}
}

type healthLogWriter struct{ t *testing.T }

func (w healthLogWriter) Write(b []byte) (int, error) {
	w.t.Log(strings.TrimSpace(string(b)))
	return len(b), nil
}

func healthLogger(t *testing.T) *slog.Logger {
	return slog.New(slog.NewTextHandler(healthLogWriter{t}, nil))
}

// runChecker runs h until the test ends.
func runChecker(t *testing.T, h *HealthChecker) {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { h.Run(ctx); close(done) }()
	t.Cleanup(func() { cancel(); <-done })
}

// waitBackendState polls b until cond holds for the named backend (generous
// deadlines: these are not timing tests).
func waitBackendState(t *testing.T, b *Backends, name string, within time.Duration, what string, cond func(ReplicaState) bool) ReplicaState {
	t.Helper()
	deadline := time.Now().Add(within)
	for {
		st, _ := b.Snapshot().Get(name)
		if cond(st) {
			return st
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: not %s within %s; last state %+v", name, what, within, st)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func primaryWALPosition(t *testing.T, env *testbed.Env, db string) LSN {
	t.Helper()
	var s string
	conn := env.Connect(t, env.AppDSN(db))
	if err := conn.QueryRow(context.Background(), "select pg_current_wal_lsn()::text").Scan(&s); err != nil {
		t.Fatal(err)
	}
	l, err := ParseLSN(s)
	if err != nil {
		t.Fatal(err)
	}
	return l
}

func TestHealthCheckerRolesAndReplay(t *testing.T) {
	env := testbed.Require(t)
	b, err := NewBackends()
	if err != nil {
		t.Fatal(err)
	}
	tr := NewLSNTracker()
	h := NewHealthChecker(b, tr, healthBedTargets(t, env), healthBedConfig(env), healthLogger(t), nil)
	t.Cleanup(h.Close)

	if err := h.CheckNow(context.Background()); err != nil {
		t.Fatalf("CheckNow: %v", err)
	}
	snap := b.Snapshot()
	p, ok := snap.Primary()
	if !ok || p.Name != "primary" || p.InRecovery || !p.Healthy {
		t.Fatalf("primary %+v (ok %v), want the configured primary, healthy, not in recovery", p, ok)
	}
	r, _ := snap.Get("replica")
	if !r.Healthy || !r.InRecovery || r.Primary || r.ReplayLSN == 0 || r.Weight != 1 {
		t.Fatalf("replica %+v, want healthy, in recovery, not primary, with a replay LSN and weight 1", r)
	}

	runChecker(t, h)
	db := env.CreateDB(t, "health")
	conn := env.Connect(t, env.AppDSN(db))
	if _, err := conn.Exec(context.Background(),
		"create table t (x int); insert into t select generate_series(1, 1000)"); err != nil {
		t.Fatal(err)
	}
	target := primaryWALPosition(t, env, db)
	if target <= r.ReplayLSN {
		t.Fatalf("primary at %s after a write, replica was already at %s", target, r.ReplayLSN)
	}
	tr.NoteCommit("client", []string{"t"}, target)
	start := time.Now()
	got := waitBackendState(t, b, "replica", 10*time.Second, "replayed to "+target.String(), func(st ReplicaState) bool {
		return st.Healthy && st.InRecovery && st.ReplayLSN >= target
	})
	t.Logf("snapshot shows replica at %s (target %s) after %s", got.ReplayLSN, target, time.Since(start).Round(time.Millisecond))

	// Once every replica has the write, the tracker forgets it.
	deadline := time.Now().Add(5 * time.Second)
	for tr.Len() != 0 {
		if time.Now().After(deadline) {
			t.Fatalf("tracker still holds %d entries after the replica replayed them", tr.Len())
		}
		time.Sleep(10 * time.Millisecond)
	}
	// A caught-up replica shows no lag in seconds, however long ago the
	// last commit was (bytes may briefly differ if others write).
	waitBackendState(t, b, "replica", 10*time.Second, "caught up with zero lag", func(st ReplicaState) bool {
		return st.Healthy && st.Lag == 0
	})
}

// hungHealthListener accepts connections and never answers, like a server
// behind a dropped route: only the connect timeout ends the attempt.
func hungHealthListener(t *testing.T) string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	var conns []net.Conn
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			conns = append(conns, c)
			mu.Unlock()
		}
	}()
	t.Cleanup(func() {
		ln.Close()
		mu.Lock()
		defer mu.Unlock()
		for _, c := range conns {
			c.Close()
		}
	})
	return ln.Addr().String()
}

func TestHealthCheckerDeadBackendsDoNotStallOthers(t *testing.T) {
	env := testbed.Require(t)
	targets := append(healthBedTargets(t, env),
		HealthTarget{Name: "refused", Host: "127.0.0.1", Port: 1, Weight: 1},
		healthBedTarget(t, "hung", hungHealthListener(t), false, 1))
	cfg := healthBedConfig(env)
	cfg.ConnectTimeout = 3 * time.Second
	b, _ := NewBackends()
	reg := prometheus.NewRegistry()
	h := NewHealthChecker(b, nil, targets, cfg, healthLogger(t), reg)
	runChecker(t, h)

	// While "hung" sits in its 3s connect, the replica keeps being
	// checked every LSNInterval (50ms); demand just a few updates within
	// a window shorter than the connect timeout.
	start := time.Now()
	seen := map[time.Time]bool{}
	for time.Since(start) < 1500*time.Millisecond && len(seen) < 5 {
		if st, _ := b.Snapshot().Get("replica"); st.Healthy {
			seen[st.CheckedAt] = true
		}
		time.Sleep(5 * time.Millisecond)
	}
	if len(seen) < 5 {
		t.Fatalf("replica updated %d times in %s while a backend hung; want 5", len(seen), time.Since(start))
	}
	t.Logf("replica updated %d times in %s", len(seen), time.Since(start).Round(time.Millisecond))
	// The primary answers on its own schedule; on a loaded machine its
	// first answer may come after the replica's fifth.
	waitBackendState(t, b, "primary", 5*time.Second, "the primary checked", func(st ReplicaState) bool {
		return st.Primary && st.Healthy
	})
	snap := b.Snapshot()
	for _, name := range []string{"refused", "hung"} {
		if st, _ := snap.Get(name); st.Healthy || st.Primary {
			t.Errorf("%s: %+v, want unhealthy", name, st)
		}
	}
	if n := healthFailureCount(t, reg, "refused"); n < 1 {
		t.Errorf("failure counter for refused = %v, want >= 1", n)
	}

	// CheckNow on its own checker: bounded by the connect timeout, and it
	// names the dead backends.
	cfg.ConnectTimeout = time.Second
	b2, _ := NewBackends()
	h2 := NewHealthChecker(b2, nil, targets, cfg, healthLogger(t), nil)
	t.Cleanup(h2.Close)
	start = time.Now()
	err := h2.CheckNow(context.Background())
	elapsed := time.Since(start)
	if err == nil || !strings.Contains(err.Error(), "refused") || !strings.Contains(err.Error(), "hung") ||
		strings.Contains(err.Error(), "primary:") || strings.Contains(err.Error(), "replica:") {
		t.Errorf("CheckNow error %v, want failures of refused and hung only", err)
	}
	if elapsed > 5*time.Second {
		t.Errorf("CheckNow took %s with a 1s connect timeout", elapsed)
	}
	if _, ok := b2.Snapshot().Primary(); !ok {
		t.Errorf("CheckNow: no primary despite dead replicas")
	}
}

func healthFailureCount(t *testing.T, reg *prometheus.Registry, backend string) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != "pgninja_health_check_failures_total" {
			continue
		}
		for _, m := range mf.GetMetric() {
			for _, l := range m.GetLabel() {
				if l.GetName() == "backend" && l.GetValue() == backend {
					return m.GetCounter().GetValue()
				}
			}
		}
	}
	return 0
}

// TestHealthCheckerLagLimits pauses replay on the replica (briefly: the
// bed is shared) so it falls behind deterministically, and checks that the
// byte and the seconds limit each take it out of rotation and let it back.
func TestHealthCheckerLagLimits(t *testing.T) {
	env := testbed.Require(t)
	const maxBytes = 64 << 10
	bytesCfg := healthBedConfig(env)
	bytesCfg.MaxLagBytes = maxBytes
	secsCfg := healthBedConfig(env)
	secsCfg.MaxLag = 300 * time.Millisecond
	byBytes, _ := NewBackends()
	bySecs, _ := NewBackends()
	runChecker(t, NewHealthChecker(byBytes, nil, healthBedTargets(t, env), bytesCfg, healthLogger(t), nil))
	runChecker(t, NewHealthChecker(bySecs, nil, healthBedTargets(t, env), secsCfg, healthLogger(t), nil))
	inRotation := func(st ReplicaState) bool { return st.Healthy && st.InRecovery }
	waitBackendState(t, byBytes, "replica", 10*time.Second, "in rotation", inRotation)
	waitBackendState(t, bySecs, "replica", 10*time.Second, "in rotation", inRotation)

	db := env.CreateDB(t, "health_lag")
	conn := env.Connect(t, env.AppDSN(db))
	ctx := context.Background()
	if _, err := conn.Exec(ctx, "create table t (x int, pad text)"); err != nil {
		t.Fatal(err)
	}
	replica := env.Connect(t, env.SuperReplicaDSN("postgres"))
	if _, err := replica.Exec(ctx, "select pg_wal_replay_pause()"); err != nil {
		t.Fatal(err)
	}
	resume := sync.OnceFunc(func() {
		if _, err := replica.Exec(context.Background(), "select pg_wal_replay_resume()"); err != nil {
			t.Errorf("resume replay: %v", err)
		}
	})
	t.Cleanup(resume)
	if _, err := conn.Exec(ctx, "insert into t select g, repeat('x', 200) from generate_series(1, 5000) g"); err != nil {
		t.Fatal(err)
	}
	st := waitBackendState(t, byBytes, "replica", 10*time.Second, "out of rotation for lag bytes", func(st ReplicaState) bool {
		return !st.Healthy && st.LagBytes > maxBytes
	})
	t.Logf("byte limit: replica out with %d bytes lag", st.LagBytes)
	st = waitBackendState(t, bySecs, "replica", 10*time.Second, "out of rotation for lag seconds", func(st ReplicaState) bool {
		return !st.Healthy && st.Lag > secsCfg.MaxLag
	})
	t.Logf("seconds limit: replica out with %s lag", st.Lag)
	if p, ok := byBytes.Snapshot().Primary(); !ok || p.Name != "primary" {
		t.Errorf("primary lost while a replica lagged: %+v", p)
	}
	resume()
	waitBackendState(t, byBytes, "replica", 15*time.Second, "back in rotation", inRotation)
	waitBackendState(t, bySecs, "replica", 15*time.Second, "back in rotation", inRotation)
}

// TestHealthCheckerReconfigure: targets change under a running checker as
// a reload changes them. A kept backend keeps its state throughout; a new
// one joins once checked; a dropped one leaves the set and its checks
// stop, its connection closed.
func TestHealthCheckerReconfigure(t *testing.T) {
	env := testbed.Require(t)
	b, err := NewBackends()
	if err != nil {
		t.Fatal(err)
	}
	cfg := healthBedConfig(env)
	h := NewHealthChecker(b, NewLSNTracker(), healthBedTargets(t, env), cfg, healthLogger(t), nil)
	runChecker(t, h)
	waitBackendState(t, b, "primary", 5*time.Second, "the primary", func(st ReplicaState) bool { return st.Primary && st.Healthy })
	waitBackendState(t, b, "replica", 5*time.Second, "healthy", func(st ReplicaState) bool { return st.Healthy })
	h.mu.Lock()
	dropped := h.probes[1]
	h.mu.Unlock()

	cfg.MaxLagBytes = 1 << 30
	h.Reconfigure([]HealthTarget{
		healthBedTarget(t, "primary", env.Primary, true, 0),
		healthBedTarget(t, "replica2", env.Replica, false, 3),
	}, cfg)
	snap := b.Snapshot()
	if p, ok := snap.Primary(); !ok || p.Name != "primary" {
		t.Fatalf("right after the change the primary is %+v (%v), want the kept one", p, ok)
	}
	if _, ok := snap.Get("replica"); ok {
		t.Fatal("the dropped replica is still in the set")
	}
	st := waitBackendState(t, b, "replica2", 5*time.Second, "healthy", func(st ReplicaState) bool { return st.Healthy })
	if st.Weight != 3 || !st.InRecovery {
		t.Fatalf("replica2 %+v, want weight 3, in recovery", st)
	}
	closed := func() bool {
		dropped.sem <- struct{}{}
		defer func() { <-dropped.sem }()
		return dropped.conn == nil
	}
	deadline := time.Now().Add(5 * time.Second)
	for !closed() {
		if time.Now().After(deadline) {
			t.Fatal("the dropped replica's connection is still open")
		}
		time.Sleep(10 * time.Millisecond)
	}
	time.Sleep(300 * time.Millisecond) // several check intervals
	if !closed() {
		t.Fatal("the dropped replica is checked again")
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	if len(h.probes) != 2 || h.cfg.MaxLagBytes != 1<<30 {
		t.Fatalf("after Reconfigure: %d probes, lag limit %d", len(h.probes), h.cfg.MaxLagBytes)
	}
}
