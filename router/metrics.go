package router

import (
	"github.com/prometheus/client_golang/prometheus"
)

// Metrics counts routing decisions and exposes backend health and lag.
// Register it on the registry the admin endpoint serves; nothing touches
// the global registry.
type Metrics struct {
	decisions *prometheus.CounterVec
	// known holds pre-resolved counters for every target and reason, so
	// the per-query cost is a map read and an atomic add rather than a
	// label hash.
	known map[decisionKey]prometheus.Counter
}

type decisionKey struct {
	target Target
	reason Reason
}

// allReasons lists every Reason for pre-resolving counters.
func allReasons() []Reason {
	return []Reason{
		ReasonWrite, ReasonDDL, ReasonVolatile, ReasonLocking, ReasonUtility, ReasonSession,
		ReasonUnknown, ReasonParseError, ReasonExplicitTxn, ReasonSessionPin, ReasonNonstdString,
		ReasonReplicaRead, ReasonReadOnlyTxn, ReasonHintPrimary, ReasonHintReplica, ReasonSessionHint,
		ReasonInvalidHint, ReasonReadYourWrites, ReasonTableLSN, ReasonSchemaLSN, ReasonNoHealthyReplica,
		ReasonPrimaryRead, ReasonNoPrimary, ReasonSerializable, ReasonAdvisoryLock, ReasonReplicasDrained,
	}
}

// NewMetrics registers pgninja_route_decisions_total{target,reason} and,
// when backends is not nil, per-backend gauges read from its snapshot at
// scrape time.
func NewMetrics(reg prometheus.Registerer, backends *Backends) (*Metrics, error) {
	m := &Metrics{
		decisions: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "pgninja_route_decisions_total",
			Help: "Statements routed, by target server kind and reason.",
		}, []string{"target", "reason"}),
		known: make(map[decisionKey]prometheus.Counter),
	}
	for _, t := range []Target{Primary, Replica} {
		for _, r := range allReasons() {
			m.known[decisionKey{t, r}] = m.decisions.WithLabelValues(t.String(), string(r))
		}
	}
	if err := reg.Register(m.decisions); err != nil {
		return nil, err
	}
	if backends != nil {
		if err := reg.Register(&backendCollector{backends: backends}); err != nil {
			reg.Unregister(m.decisions)
			return nil, err
		}
	}
	return m, nil
}

// Observe counts one decision.
func (m *Metrics) Observe(d Decision) {
	if c, ok := m.known[decisionKey{d.Target, d.Reason}]; ok {
		c.Inc()
		return
	}
	m.decisions.WithLabelValues(d.Target.String(), string(d.Reason)).Inc()
}

// backendCollector reports each backend's state from the current snapshot.
type backendCollector struct {
	backends *Backends
}

func backendDesc(name, help string) *prometheus.Desc {
	return prometheus.NewDesc(name, help, []string{"backend", "role"}, nil)
}

func (c *backendCollector) descs() (up, recovery, lagBytes, lagSeconds, replay, weight *prometheus.Desc) {
	return backendDesc("pgninja_backend_up", "1 if the backend passed its last health check."),
		backendDesc("pgninja_backend_in_recovery", "1 if the backend reported pg_is_in_recovery()."),
		backendDesc("pgninja_replica_lag_bytes", "Replica replay distance behind the primary, in bytes."),
		backendDesc("pgninja_replica_lag_seconds", "Replica replay delay behind the primary, in seconds."),
		backendDesc("pgninja_backend_replay_lsn", "Replica replay LSN as a number (pg_lsn)."),
		backendDesc("pgninja_backend_read_weight", "Configured share of routed reads.")
}

func (c *backendCollector) Describe(ch chan<- *prometheus.Desc) {
	up, rec, lb, ls, rl, w := c.descs()
	for _, d := range []*prometheus.Desc{up, rec, lb, ls, rl, w} {
		ch <- d
	}
}

func (c *backendCollector) Collect(ch chan<- prometheus.Metric) {
	up, rec, lb, ls, rl, w := c.descs()
	snap := c.backends.Snapshot()
	for _, st := range snap.States() {
		role := "replica"
		if st.Primary {
			role = "primary"
		}
		gauge := func(d *prometheus.Desc, v float64) {
			ch <- prometheus.MustNewConstMetric(d, prometheus.GaugeValue, v, st.Name, role)
		}
		gauge(up, boolFloat(st.Healthy))
		gauge(rec, boolFloat(st.InRecovery))
		gauge(w, float64(st.Weight))
		if !st.Primary {
			gauge(lb, float64(st.LagBytes))
			gauge(ls, st.Lag.Seconds())
			gauge(rl, float64(st.ReplayLSN))
		}
	}
}

func boolFloat(b bool) float64 {
	if b {
		return 1
	}
	return 0
}
