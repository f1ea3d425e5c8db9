package router

import (
	"math"
	"math/bits"
	"sync"
	"testing"
)

func TestSmoothWeightedSplit(t *testing.T) {
	cases := []struct {
		name    string
		weights []int
	}{
		{"3:1", []int{3, 1}},
		{"1:1", []int{1, 1}},
		{"5:3:2", []int{5, 3, 2}},
		{"primary 1 : replicas 2,2", []int{1, 2, 2}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			states := make([]ReplicaState, len(tc.weights))
			var all Mask
			total := 0
			for i, w := range tc.weights {
				states[i] = ReplicaState{Name: string(rune('a' + i)), Weight: w}
				all = all.With(i)
				total += w
			}
			b := NewSmoothWeighted()
			const picks = 10000
			counts := make([]int, len(states))
			for range picks {
				counts[b.Pick(states, all)]++
			}
			for i, w := range tc.weights {
				want := float64(picks) * float64(w) / float64(total)
				if math.Abs(float64(counts[i])-want) > 0.05*want {
					t.Errorf("backend %d weight %d: %d picks, want %.0f ±5%%", i, w, counts[i], want)
				}
			}
		})
	}
}

// TestSmoothWeightedSpread: smooth WRR interleaves picks instead of
// sending a backend's whole share in a burst.
func TestSmoothWeightedSpread(t *testing.T) {
	states := []ReplicaState{{Name: "a", Weight: 3}, {Name: "b", Weight: 1}}
	b := NewSmoothWeighted()
	got := ""
	for range 8 {
		got += states[b.Pick(states, Mask(0).With(0).With(1))].Name
	}
	if got != "aabaaaba" && got != "abaaabaa" {
		t.Errorf("sequence %q is not smooth", got)
	}
}

func TestSmoothWeightedEligibility(t *testing.T) {
	states := []ReplicaState{{Name: "a", Weight: 3}, {Name: "b", Weight: 1}, {Name: "c", Weight: 0}}
	b := NewSmoothWeighted()
	if i := b.Pick(states, 0); i != -1 {
		t.Errorf("empty mask picked %d", i)
	}
	if i := b.Pick(states, Mask(0).With(2)); i != -1 {
		t.Errorf("weight 0 picked %d", i)
	}
	for range 10 {
		if i := b.Pick(states, Mask(0).With(1)); i != 1 {
			t.Fatalf("only b eligible, picked %d", i)
		}
	}
	// a leaves and rejoins: the split stays fair afterwards.
	counts := map[string]int{}
	for range 4000 {
		counts[states[b.Pick(states, Mask(0).With(0).With(1))].Name]++
	}
	if counts["a"] < 2900 || counts["a"] > 3100 {
		t.Errorf("after rejoin a got %d of 4000, want ~3000", counts["a"])
	}
}

// TestSmoothWeightedLoneCandidate: a pick with one candidate (the others
// out of rotation, or weight 0) moves no score, so the sequence of the
// picks with several resumes where it was.
func TestSmoothWeightedLoneCandidate(t *testing.T) {
	states := []ReplicaState{{Name: "a", Weight: 3}, {Name: "b", Weight: 1}, {Name: "c", Weight: 0}}
	both, plain, mixed := Mask(0).With(0).With(1), NewSmoothWeighted(), NewSmoothWeighted()
	// Lone picks of a alone: a score they moved would shift the split.
	lone := []Mask{Mask(0).With(0), Mask(0).With(0).With(2)}
	for i := range 40 {
		for _, m := range lone[:i%3] {
			if got, want := mixed.Pick(states, m), bits.TrailingZeros64(uint64(m)); got != want {
				t.Fatalf("mask %b picked %d, want %d", m, got, want)
			}
		}
		if got, want := mixed.Pick(states, both), plain.Pick(states, both); got != want {
			t.Fatalf("pick %d: %d after lone picks, %d without them", i, got, want)
		}
	}
}

func TestSmoothWeightedConcurrent(t *testing.T) {
	states := []ReplicaState{{Name: "a", Weight: 3}, {Name: "b", Weight: 1}}
	b := NewSmoothWeighted()
	var mu sync.Mutex
	counts := [2]int{}
	var wg sync.WaitGroup
	for range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			local := [2]int{}
			for range 2500 {
				local[b.Pick(states, Mask(3))]++
			}
			mu.Lock()
			counts[0] += local[0]
			counts[1] += local[1]
			mu.Unlock()
		}()
	}
	wg.Wait()
	if counts[0] != 15000 || counts[1] != 5000 {
		t.Errorf("concurrent picks split %v, want exactly [15000 5000]", counts)
	}
}
