package router

import (
	"fmt"
	"sync"
	"sync/atomic"
	"time"
)

// MaxBackends bounds the backend set so eligibility fits a 64-bit mask and
// replica selection never allocates.
const MaxBackends = 64

// ReplicaState is what the router knows about one server, primary or
// replica, as last reported by the health checker. The zero value is an
// unhealthy replica, so a server takes no reads until it has been checked.
type ReplicaState struct {
	Name string `json:"name"`
	// Primary: this server takes writes (configured role, corrected by the
	// health checker after a promotion).
	Primary bool `json:"primary,omitempty"`
	// Healthy: reachable and answering on the last check.
	Healthy bool `json:"healthy,omitempty"`
	// InRecovery is pg_is_in_recovery(). A replica must be in recovery to
	// serve reads (a promoted one no longer follows the primary), and the
	// primary must not be (writes never go to a server in recovery).
	InRecovery bool `json:"in_recovery,omitempty"`
	// ReplayLSN is pg_last_wal_replay_lsn() for a replica.
	ReplayLSN LSN `json:"replay_lsn,omitempty"`
	// Weight is the share of reads; 0 takes none (the primary's default).
	Weight int `json:"weight,omitempty"`
	// LagBytes and Lag are the replica's distance behind the primary.
	LagBytes int64         `json:"lag_bytes,omitempty"`
	Lag      time.Duration `json:"lag,omitempty"`
	// CheckedAt is when the health checker last updated this entry.
	CheckedAt time.Time `json:"-"`
}

// Backends is the current set of servers. Readers take a Snapshot, an
// immutable value behind an atomic pointer, so routing never blocks on (or
// blocks) the health checker; writers copy, modify and swap.
type Backends struct {
	mu  sync.Mutex // serializes writers
	cur atomic.Pointer[Snapshot]
}

// Snapshot is one immutable view of the backends.
type Snapshot struct {
	states  []ReplicaState
	primary int // index of the writable primary, or -1
}

// NewBackends returns a set holding states (see Replace).
func NewBackends(states ...ReplicaState) (*Backends, error) {
	b := &Backends{}
	if err := b.Replace(states); err != nil {
		return nil, err
	}
	return b, nil
}

// Snapshot returns the current view. It never blocks.
func (b *Backends) Snapshot() *Snapshot { return b.cur.Load() }

// Replace installs a new set of states (copied). Names must be unique.
func (b *Backends) Replace(states []ReplicaState) error {
	if len(states) > MaxBackends {
		return fmt.Errorf("router: %d backends, at most %d supported", len(states), MaxBackends)
	}
	seen := make(map[string]bool, len(states))
	for _, s := range states {
		if seen[s.Name] {
			return fmt.Errorf("router: duplicate backend name %q", s.Name)
		}
		seen[s.Name] = true
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	b.cur.Store(newSnapshot(append([]ReplicaState(nil), states...)))
	return nil
}

// Update changes the named backend's state with fn and reports whether it
// exists. fn runs on a copy; other routers keep using the old snapshot
// until the swap.
func (b *Backends) Update(name string, fn func(*ReplicaState)) bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	old := b.cur.Load()
	for i := range old.states {
		if old.states[i].Name == name {
			states := append([]ReplicaState(nil), old.states...)
			fn(&states[i])
			states[i].Name = name
			b.cur.Store(newSnapshot(states))
			return true
		}
	}
	return false
}

func newSnapshot(states []ReplicaState) *Snapshot {
	s := &Snapshot{states: states, primary: -1}
	for i, st := range states {
		if st.Primary && st.Healthy && !st.InRecovery {
			s.primary = i
			break
		}
	}
	return s
}

// States returns the backends in configuration order. The slice is shared:
// do not modify it.
func (s *Snapshot) States() []ReplicaState { return s.states }

// Primary returns the healthy, writable primary, if any.
func (s *Snapshot) Primary() (ReplicaState, bool) {
	if s.primary < 0 {
		return ReplicaState{}, false
	}
	return s.states[s.primary], true
}

// Get returns the named backend's state.
func (s *Snapshot) Get(name string) (ReplicaState, bool) {
	for _, st := range s.states {
		if st.Name == name {
			return st, true
		}
	}
	return ReplicaState{}, false
}

// MinReplayLSN is the lowest replay position among healthy replicas in
// recovery (0 if there are none): every write at or below it is visible
// everywhere reads go, which is what LSNTracker.Prune needs.
func (s *Snapshot) MinReplayLSN() LSN {
	var min LSN
	found := false
	for _, st := range s.states {
		if st.Primary || !st.Healthy || !st.InRecovery {
			continue
		}
		if !found || st.ReplayLSN < min {
			min, found = st.ReplayLSN, true
		}
	}
	return min
}
