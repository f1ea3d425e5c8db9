package router

import (
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
	rc := cfg.Routing
	replicas := 0
	for _, b := range cfg.Backends {
		if b.Role == config.RoleReplica {
			replicas++
		}
	}
	if !rc.Enabled || replicas == 0 {
		return nil, nil, nil
	}
	consistency, err := ParseConsistency(rc.Consistency)
	if err != nil {
		return nil, nil, err
	}
	// Until the first check, every server is unhealthy: reads stay on the
	// primary rather than reach a replica nobody has looked at.
	states := make([]ReplicaState, 0, len(cfg.Backends))
	targets := make([]HealthTarget, 0, len(cfg.Backends))
	for _, b := range cfg.Backends {
		primary := b.Role == config.RolePrimary
		states = append(states, ReplicaState{Name: b.Name, Primary: primary, Healthy: primary, Weight: b.Weight})
		targets = append(targets, HealthTarget{Name: b.Name, Host: b.Host, Port: b.Port, Primary: primary, Weight: b.Weight})
	}
	backends, err := NewBackends(states...)
	if err != nil {
		return nil, nil, err
	}
	metrics, err := NewMetrics(reg, backends)
	if err != nil {
		return nil, nil, err
	}
	maxLag := time.Duration(rc.MaxReplicaLagSeconds * float64(time.Second))
	tracker := NewLSNTracker()
	r := New(Config{Consistency: consistency, MaxReplicaLagBytes: rc.MaxReplicaLagBytes, MaxReplicaLag: maxLag},
		backends, WithTracker(tracker), WithMetrics(metrics))

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
	hc := NewHealthChecker(backends, tracker, targets, HealthConfig{
		Interval: rc.HealthCheckInterval, LSNInterval: rc.LSNPollInterval,
		User: user, Password: pass, Database: rc.HealthCheckDatabase,
		SSLMode: cfg.TLS.BackendMode, ConnectTimeout: checkTimeout,
		MaxLagBytes: rc.MaxReplicaLagBytes, MaxLag: maxLag,
	}, log, reg)
	r.health = hc
	return r, hc, nil
}
