package router

import "sync"

// Mask is a set of indexes into a Snapshot's states.
type Mask uint64

// Has reports whether index i is in the set.
func (m Mask) Has(i int) bool { return i >= 0 && i < 64 && m&(1<<uint(i)) != 0 }

// With returns the set plus index i.
func (m Mask) With(i int) Mask { return m | 1<<uint(i) }

// Balancer picks one backend for a read among the eligible ones. It must
// be safe for concurrent use; weights come from ReplicaState.Weight.
type Balancer interface {
	// Pick returns an index i with eligible.Has(i), or -1 if eligible is
	// empty.
	Pick(states []ReplicaState, eligible Mask) int
}

// SmoothWeighted is nginx's smooth weighted round-robin: each pick adds
// every eligible backend's weight to its running score, takes the highest
// score, and subtracts the total from the winner. Over any window of
// sum(weights) picks each backend is chosen exactly weight times, and
// picks of one backend are spread out rather than bunched.
type SmoothWeighted struct {
	mu      sync.Mutex
	current map[string]int64
}

// NewSmoothWeighted returns an empty balancer.
func NewSmoothWeighted() *SmoothWeighted {
	return &SmoothWeighted{current: make(map[string]int64)}
}

// Pick implements Balancer. Scores are kept per backend name, so they
// survive snapshot swaps and backends leaving and rejoining the set.
func (b *SmoothWeighted) Pick(states []ReplicaState, eligible Mask) int {
	if i, ok := onlyCandidate(states, eligible); ok {
		// One candidate's pick adds its weight to its score and takes the
		// same total back: no score moves, so the lock and the map
		// (a quarter of what routing adds to a read, with one replica)
		// are skipped.
		return i
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	best, total := -1, int64(0)
	var bestScore int64
	for i := range states {
		if !eligible.Has(i) {
			continue
		}
		w := int64(states[i].Weight)
		if w <= 0 {
			continue
		}
		score := b.current[states[i].Name] + w
		b.current[states[i].Name] = score
		total += w
		if best < 0 || score > bestScore {
			best, bestScore = i, score
		}
	}
	if best >= 0 {
		b.current[states[best].Name] = bestScore - total
	}
	return best
}

// onlyCandidate returns the one eligible backend with a positive weight;
// ok is false when there are none or several.
func onlyCandidate(states []ReplicaState, eligible Mask) (i int, ok bool) {
	i = -1
	for j := range states {
		if !eligible.Has(j) || states[j].Weight <= 0 {
			continue
		}
		if i >= 0 {
			return -1, false
		}
		i = j
	}
	return i, i >= 0
}
