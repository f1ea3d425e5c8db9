package router

// SetWeights gives the named backends new shares of routed reads, as a
// reload of the configuration does; which servers there are, and where,
// stays as it was. Reads follow the new weights at once, and the health
// checker built with the router keeps them in every set it publishes
// after.
func (r *Router) SetWeights(weights map[string]int) {
	if r.health != nil {
		r.health.setWeights(weights)
		return
	}
	for name, w := range weights {
		r.backends.Update(name, func(st *ReplicaState) { st.Weight = w })
	}
}

// setWeights changes the weights the checker publishes, and the current
// set, under the lock that orders publishes: a check finishing meanwhile
// cannot bring back an old weight.
func (h *HealthChecker) setWeights(weights map[string]int) {
	h.mu.Lock()
	defer h.mu.Unlock()
	for i := range h.targets {
		if w, ok := weights[h.targets[i].Name]; ok {
			h.targets[i].Weight = w
		}
	}
	for name, w := range weights {
		h.backends.Update(name, func(st *ReplicaState) { st.Weight = w })
	}
}
