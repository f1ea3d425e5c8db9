package router

import (
	"sync/atomic"
	"time"

	"github.com/ai-ninja/pgninja/parser"
)

// Config is the routing part of pgninja's configuration.
type Config struct {
	Consistency Consistency
	// MaxReplicaLagBytes and MaxReplicaLag take a replica out of rotation
	// while it lags more; zero means no limit. The health checker may also
	// mark such a replica unhealthy; checking here too keeps a stale
	// replica out even between checks' verdicts.
	MaxReplicaLagBytes int64
	MaxReplicaLag      time.Duration
}

// Router turns policy decisions into backends. It is safe for concurrent
// use; one serves all sessions of a proxy.
type Router struct {
	// cfg changes with Reconfigure; its Consistency never does.
	cfg      atomic.Pointer[Config]
	backends *Backends
	tracker  *LSNTracker
	balancer Balancer
	metrics  *Metrics
	// health, when set, publishes the backend set and so owns the
	// weights in it (see SetWeights).
	health *HealthChecker
}

// Option customizes a Router.
type Option func(*Router)

// WithTracker shares an LSNTracker (default: a new one).
func WithTracker(t *LSNTracker) Option { return func(r *Router) { r.tracker = t } }

// WithBalancer replaces smooth weighted round-robin.
func WithBalancer(b Balancer) Option { return func(r *Router) { r.balancer = b } }

// WithMetrics counts every decision.
func WithMetrics(m *Metrics) Option { return func(r *Router) { r.metrics = m } }

// New returns a Router over backends.
func New(cfg Config, backends *Backends, opts ...Option) *Router {
	r := &Router{backends: backends}
	r.cfg.Store(&cfg)
	for _, o := range opts {
		o(r)
	}
	if r.tracker == nil {
		r.tracker = NewLSNTracker()
	}
	if r.balancer == nil {
		r.balancer = NewSmoothWeighted()
	}
	return r
}

// Tracker returns the router's LSN tracker.
func (r *Router) Tracker() *LSNTracker { return r.tracker }

// Backends returns the backend set the router reads.
func (r *Router) Backends() *Backends { return r.backends }

// Route decides where c runs for the session s and picks the backend.
func (r *Router) Route(c *parser.Classification, s *SessionState) Decision {
	d := r.route(c, s)
	if r.metrics != nil {
		r.metrics.Observe(d)
	}
	return d
}

func (r *Router) route(c *parser.Classification, s *SessionState) Decision {
	d := Decide(c, s)
	if d.Err != nil || d.Backend != "" {
		// Errors, and transactions or pinned sessions already placed.
		return d
	}
	snap := r.backends.Snapshot()
	if d.Target == Primary {
		return onPrimary(snap, d)
	}

	cfg := r.cfg.Load()
	req, lsnReason := r.required(c, s)
	d.RequiredLSN = req
	var eligible Mask
	// drained and out count the replicas out of rotation for their weight
	// 0 alone and for anything else.
	inRotation, lsnExcluded, drained, out := 0, 0, 0, 0
	for i, st := range snap.states {
		if i == snap.primary || st.Primary {
			continue
		}
		if !r.inRotation(st, cfg) {
			if st.Weight <= 0 && st.Healthy && st.InRecovery {
				drained++
			} else {
				out++
			}
			continue
		}
		inRotation++
		if st.ReplayLSN < req {
			lsnExcluded++
			continue
		}
		eligible = eligible.With(i)
	}
	if eligible == 0 {
		d.Target = Primary
		d.Reason = ReasonNoHealthyReplica
		switch {
		case inRotation > 0 && lsnExcluded > 0:
			d.Reason = lsnReason
		case inRotation == 0 && drained > 0 && out == 0:
			// Weight 0 is the operator's choice, not an outage to alert on.
			d.Reason = ReasonReplicasDrained
		}
		return onPrimary(snap, d)
	}
	// The primary shares reads by its weight only while some replica could
	// take them too; otherwise the fallback reason above is the truth.
	if p := snap.primary; p >= 0 && snap.states[p].Weight > 0 {
		eligible = eligible.With(p)
	}
	i := r.balancer.Pick(snap.states, eligible)
	switch {
	case i < 0: // a custom balancer declined
		d.Target, d.Reason = Primary, ReasonNoHealthyReplica
		return onPrimary(snap, d)
	case i == snap.primary:
		return Decision{Target: Primary, Backend: snap.states[i].Name, Reason: ReasonPrimaryRead, RequiredLSN: req}
	}
	d.Backend = snap.states[i].Name
	return d
}

// inRotation: a replica may serve reads at all (LSN aside).
func (r *Router) inRotation(st ReplicaState, cfg *Config) bool {
	switch {
	case st.Primary, !st.Healthy, !st.InRecovery, st.Weight <= 0:
		return false
	case cfg.MaxReplicaLagBytes > 0 && st.LagBytes > cfg.MaxReplicaLagBytes:
		return false
	case cfg.MaxReplicaLag > 0 && st.Lag > cfg.MaxReplicaLag:
		return false
	}
	return true
}

// required is the replay LSN a replica needs for this read, and the reason
// to report if none has it.
func (r *Router) required(c *parser.Classification, s *SessionState) (LSN, Reason) {
	consistency := r.cfg.Load().Consistency
	if consistency == Eventual {
		return 0, ""
	}
	req, reason := s.LastCommitLSN, ReasonReadYourWrites
	if l := r.tracker.Client(s.ClientKey); l > req {
		req = l
	}
	if l := r.tracker.Schema(); l > req {
		req, reason = l, ReasonSchemaLSN
	}
	if consistency != TableConsistency {
		return req, reason
	}
	// A transaction being opened will read tables not named yet.
	var tbl LSN
	if c.Kind == parser.Read && !s.InTxn {
		tbl = r.tracker.Required(c.ReadTables)
	} else {
		tbl = r.tracker.Max()
	}
	if tbl > req {
		return tbl, ReasonTableLSN
	}
	return req, reason
}

func onPrimary(snap *Snapshot, d Decision) Decision {
	p, ok := snap.Primary()
	if !ok {
		return Decision{Target: Primary, Reason: ReasonNoPrimary, RequiredLSN: d.RequiredLSN, Err: ErrNoPrimary}
	}
	d.Target, d.Backend = Primary, p.Name
	return d
}
