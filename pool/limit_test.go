package pool

import (
	"context"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ai-ninja/pgninja/internal/pgerr"
)

// limitedPools returns two pools under one shared limit of max.
func limitedPools(max int, acquireTimeout time.Duration) (a, b *Pool, l *Limit, dials *atomic.Int32) {
	dials = new(atomic.Int32)
	l = NewLimit(max)
	o := opts(5)
	o.AcquireTimeout = acquireTimeout
	o.Limits = []*Limit{l}
	return New(Target{}, o, fakeDial(dials, nil)), New(Target{}, o, fakeDial(dials, nil)), l, dials
}

func TestLimitCapsPoolsTogether(t *testing.T) {
	a, b, l, _ := limitedPools(2, 200*time.Millisecond)
	mustAcquire(t, a)
	mustAcquire(t, a)
	if _, err := b.Acquire(context.Background()); pgerr.SQLState(err) != pgerr.TooManyConnections {
		t.Fatalf("a third connection under a limit of 2, both in use: %v, want 53300", err)
	}
	if got := l.Used(); got != 2 {
		t.Fatalf("limit used %d, want 2", got)
	}
	if c, err := b.TryAcquire(context.Background()); c != nil || err != nil {
		t.Fatalf("TryAcquire at the limit: %v, %v; want nothing, at once", c, err)
	}
}

func TestLimitClosesAnotherPoolsIdleConnection(t *testing.T) {
	a, b, l, dials := limitedPools(2, 200*time.Millisecond)
	c1, c2 := mustAcquire(t, a), mustAcquire(t, a)
	a.Release(c1, false)
	a.Release(c2, false)
	mustAcquire(t, b)
	if a.Stats().Total != 1 || dials.Load() != 3 || l.Used() != 2 {
		t.Fatalf("after b took one: a has %d, %d dials, limit used %d; want 1, 3, 2", a.Stats().Total, dials.Load(), l.Used())
	}
}

func TestLimitWakesTheStarvedPool(t *testing.T) {
	a, b, l, _ := limitedPools(2, 5*time.Second)
	c1 := mustAcquire(t, a)
	mustAcquire(t, a)
	// b's client queues; a's connection, done with, is closed for it
	// rather than kept idle.
	acquiredAfter(t, b, "the starved pool was not woken", func() { a.Release(c1, false) })
	if a.Stats().Total != 1 || a.Stats().Idle != 0 || l.Used() != 2 {
		t.Fatalf("a has %d (%d idle), limit used %d; want 1 (0 idle), 2", a.Stats().Total, a.Stats().Idle, l.Used())
	}
}

func TestLimitRaisedWakesTheStarvedPool(t *testing.T) {
	a, b, l, _ := limitedPools(1, 5*time.Second)
	mustAcquire(t, a)
	acquiredAfter(t, b, "raising the cap woke nobody", func() { l.SetMax(2) })
}

// acquiredAfter queues an Acquire on p, runs wake once it waits, and
// fails with what unless the Acquire then succeeds within 3 s.
func acquiredAfter(t *testing.T, p *Pool, what string, wake func()) {
	t.Helper()
	got := make(chan error, 1)
	go func() { _, err := p.Acquire(context.Background()); got <- err }()
	waitUntil(t, func() bool { return p.Stats().Waiting == 1 })
	wake()
	select {
	case err := <-got:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(3 * time.Second):
		t.Fatal(what)
	}
}

func TestLimitWithoutCapCountsAll(t *testing.T) {
	a, b, l, _ := limitedPools(0, time.Second)
	c := mustAcquire(t, a)
	mustAcquire(t, a)
	mustAcquire(t, b)
	if got := l.Used(); got != 3 {
		t.Fatalf("used %d, want 3", got)
	}
	c.MarkBroken()
	a.Release(c, false)
	if got := l.Used(); got != 2 {
		t.Fatalf("after a close, used %d, want 2", got)
	}
	// A cap set later knows what is open.
	l.SetMax(2)
	if c, err := b.TryAcquire(context.Background()); c != nil || err != nil {
		t.Fatalf("TryAcquire at a cap set later: %v, %v", c, err)
	}
}

func waitUntil(t *testing.T, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(3 * time.Second); !cond(); time.Sleep(5 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("timed out")
		}
	}
}
