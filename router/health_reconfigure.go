package router

import (
	"context"
	"slices"
)

// Reconfigure makes the checker watch targets with cfg from now on, as a
// reload of the configuration does. A backend whose name, address and
// check settings are unchanged keeps its connection and its last answer,
// so reads it serves do not pause; one that is new, moved or checked
// differently is unchecked (unhealthy, or as it stands in the set for a
// name kept) until its first check, which starts at once. A backend no
// longer listed leaves the published set now and its checks stop.
func (h *HealthChecker) Reconfigure(targets []HealthTarget, cfg HealthConfig) {
	cfg = cfg.withDefaults()
	h.mu.Lock()
	defer h.mu.Unlock()
	kept := make(map[*backendProbe]bool, len(targets))
	probes := make([]*backendProbe, 0, len(targets))
	latest := make([]backendObservation, 0, len(targets))
	for _, t := range targets {
		fresh := h.newProbe(t, cfg)
		var o backendObservation
		for i, p := range h.probes {
			if p.target.Name == t.Name && p.connStr == fresh.connStr && p.timeout == fresh.timeout {
				fresh, o = p, h.latest[i]
				kept[p] = true
				break
			}
		}
		probes, latest = append(probes, fresh), append(latest, o)
	}
	for _, p := range h.probes {
		if !kept[p] {
			h.drop(p)
			if !slices.ContainsFunc(targets, func(t HealthTarget) bool { return t.Name == p.target.Name }) {
				h.log.Info("backend removed", "backend", p.target.Name)
			}
		}
	}
	for _, t := range targets {
		if !slices.ContainsFunc(h.targets, func(o HealthTarget) bool { return o.Name == t.Name }) {
			h.log.Info("backend added; it takes reads once a check finds it healthy", "backend", t.Name,
				"host", t.Host, "port", t.Port)
		}
	}
	h.cfg, h.targets, h.probes, h.latest = cfg, append([]HealthTarget(nil), targets...), probes, latest
	if h.running != nil {
		for _, p := range probes {
			if !kept[p] {
				h.startPoller(p)
			}
		}
	}
	h.republish()
}

// drop stops p's checks and closes its connection, without waiting for a
// check in progress; h.mu is held.
func (h *HealthChecker) drop(p *backendProbe) {
	if p.stop != nil {
		p.stop()
	}
	go func() {
		if p.lock(context.Background()) == nil {
			p.close()
			p.unlock()
		}
	}()
}
