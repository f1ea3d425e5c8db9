package router

import (
	"testing"
	"time"
)

// TestSetWeights: new weights reach the backend set at once and, with a
// health checker, outlive its next publish, which rebuilds the set from
// the checker's own copy of the targets.
func TestSetWeights(t *testing.T) {
	for _, withChecker := range []bool{false, true} {
		name := map[bool]string{false: "backends alone", true: "with a health checker"}[withChecker]
		t.Run(name, func(t *testing.T) {
			targets := []HealthTarget{{Name: "p", Primary: true}, {Name: "r", Weight: 3}}
			b, err := NewBackends(ReplicaState{Name: "p", Primary: true, Healthy: true}, ReplicaState{Name: "r", Weight: 3})
			if err != nil {
				t.Fatal(err)
			}
			r := New(Config{}, b)
			var h *HealthChecker
			if withChecker {
				h = NewHealthChecker(b, nil, targets, HealthConfig{}, nil, nil)
				r.health = h
			}
			r.SetWeights(map[string]int{"p": 1, "r": 7, "gone": 2})
			weight := func(name string) int {
				st, ok := b.Snapshot().Get(name)
				if !ok {
					t.Fatalf("backend %s missing", name)
				}
				return st.Weight
			}
			if p, r := weight("p"), weight("r"); p != 1 || r != 7 {
				t.Fatalf("weights p=%d r=%d after SetWeights, want 1 and 7", p, r)
			}
			if _, ok := b.Snapshot().Get("gone"); ok {
				t.Error("a weight for an unknown backend added one")
			}
			if h == nil {
				return
			}
			h.publish(1, backendObservation{up: true, at: time.Now(), inRecovery: true, lsn: 100})
			if p, r := weight("p"), weight("r"); p != 1 || r != 7 {
				t.Errorf("weights p=%d r=%d after the next check, want 1 and 7", p, r)
			}
		})
	}
}
