package router

import (
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/ai-ninja/pgninja/config"
	"github.com/prometheus/client_golang/prometheus"
)

// FromConfig builds the router and its health checker from the routing
// and backends settings. It returns nil, nil when routing is off or there
// is no replica to route to: the proxy then sends everything to the
// primary. The checker must be Run by the caller.
func FromConfig(cfg *config.Config, log *slog.Logger, reg prometheus.Registerer) (*Router, *HealthChecker, error) {
	if !Routes(cfg) {
		return nil, nil, nil
	}
	rcfg, targets, hcfg, err := fromConfig(cfg)
	if err != nil {
		return nil, nil, err
	}
	// Until the first check, every server is unhealthy: reads stay on the
	// primary rather than reach a replica nobody has looked at.
	states := make([]ReplicaState, 0, len(targets))
	for _, t := range targets {
		states = append(states, ReplicaState{Name: t.Name, Primary: t.Primary, Healthy: t.Primary, Weight: t.Weight})
	}
	backends, err := NewBackends(states...)
	if err != nil {
		return nil, nil, err
	}
	metrics, err := NewMetrics(reg, backends)
	if err != nil {
		return nil, nil, err
	}
	tracker := NewLSNTracker()
	r := New(rcfg, backends, WithTracker(tracker), WithMetrics(metrics))
	hc := NewHealthChecker(backends, tracker, targets, hcfg, log, reg)
	r.health = hc
	return r, hc, nil
}

// Routes reports whether cfg routes reads: routing on, and a replica to
// route them to.
func Routes(cfg *config.Config) bool {
	if !cfg.Routing.Enabled {
		return false
	}
	for _, b := range cfg.Backends {
		if b.Role == config.RoleReplica {
			return true
		}
	}
	return false
}

// Reconfigure applies a reloaded configuration to a running router: the
// servers it watches and routes to (added, removed, moved), their
// weights, the lag limits and the health check settings. The consistency
// mode, which sessions' state depends on, is the one thing it refuses to
// change.
func (r *Router) Reconfigure(cfg *config.Config) error {
	rcfg, targets, hcfg, err := fromConfig(cfg)
	if err != nil {
		return err
	}
	if rcfg.Consistency != r.cfg.Load().Consistency {
		return errors.New("routing.consistency: takes effect at restart")
	}
	if len(targets) > MaxBackends {
		return fmt.Errorf("backends: %d, at most %d with routing", len(targets), MaxBackends)
	}
	r.cfg.Store(&rcfg)
	if r.health != nil {
		r.health.Reconfigure(targets, hcfg)
	}
	return nil
}

// fromConfig derives the router's settings, the servers to watch and
// how from cfg.
func fromConfig(cfg *config.Config) (Config, []HealthTarget, HealthConfig, error) {
	rc := cfg.Routing
	consistency, err := ParseConsistency(rc.Consistency)
	if err != nil {
		return Config{}, nil, HealthConfig{}, err
	}
	targets := make([]HealthTarget, 0, len(cfg.Backends))
	for _, b := range cfg.Backends {
		targets = append(targets, HealthTarget{Name: b.Name, Host: b.Host, Port: b.Port,
			Primary: b.Role == config.RolePrimary, Weight: b.Weight})
	}
	maxLag := time.Duration(rc.MaxReplicaLagSeconds * float64(time.Second))
	user, pass := rc.HealthCheckUser, rc.HealthCheckPassword
	if user == "" && len(cfg.Users) > 0 {
		u := cfg.Users[0]
		user, pass = u.Name, u.Password
		if u.ServerUser != "" {
			user, pass = u.ServerUser, u.ServerPassword
		}
	}
	// A hung server must leave rotation within seconds, whatever the
	// pool's own (longer) connect timeout is.
	checkTimeout := min(cfg.Pool.ConnectTimeout, 3*time.Second)
	hcfg := HealthConfig{
		Interval: rc.HealthCheckInterval, LSNInterval: rc.LSNPollInterval,
		User: user, Password: pass, Database: rc.HealthCheckDatabase,
		SSLMode: cfg.TLS.BackendMode, SSLFiles: cfg.TLS.BackendFiles(), ConnectTimeout: checkTimeout,
		MaxLagBytes: rc.MaxReplicaLagBytes, MaxLag: maxLag,
	}
	return Config{Consistency: consistency, MaxReplicaLagBytes: rc.MaxReplicaLagBytes, MaxReplicaLag: maxLag},
		targets, hcfg, nil
}
