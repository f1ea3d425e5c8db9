package pool

import (
	"slices"
	"sync"
	"sync/atomic"
)

// Limit caps the server connections of several pools together, as
// PgBouncer's max_db_connections (every user's pool of one database) and
// max_user_connections (every pool of one user) do. A pool counts a
// connection against each of its limits (Options.Limits) from the moment
// it decides to dial until the connection is closed. Every connection
// counts, with no cap too, so that a cap a reload sets knows what is
// open; a pool's limits stay the same objects, and only their caps
// change.
//
// A pool that may not open a connection because a limit is reached first
// closes an idle connection of another pool under the limit, if there is
// one; otherwise its clients wait, and the limit remembers the pool as
// starved. A connection closed anywhere under the limit then wakes it,
// and a connection another pool is done with is closed rather than kept
// idle while one starves. So a busy user cannot be locked out by
// another's idle connections.
//
// Lock order: a pool's mu, then a limit's; a limit never takes a pool's
// lock while it holds its own.
type Limit struct {
	// Name says which cap this is, for the error of a client it kept
	// waiting too long.
	Name    string
	mu      sync.Mutex
	max     int // 0: no limit
	used    int
	members map[*Pool]struct{}
	starved []*Pool
	// anyStarved mirrors len(starved) > 0, for the check every Release
	// makes without taking the lock.
	anyStarved atomic.Bool
}

// NewLimit returns a limit of max connections; 0 means none.
func NewLimit(max int) *Limit { return &Limit{max: max, members: map[*Pool]struct{}{}} }

// SetMax changes the cap, as a reload does; pools starved by a lower one
// get their chance at once.
func (l *Limit) SetMax(max int) {
	l.mu.Lock()
	l.max = max
	wake := l.takeStarved()
	l.mu.Unlock()
	for _, p := range wake {
		go p.retryStarved()
	}
}

// Max returns the cap; 0 means none.
func (l *Limit) Max() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.max
}

// reached reports whether the cap is reached now.
func (l *Limit) reached() bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.max > 0 && l.used >= l.max
}

// Used returns how many connections count against the limit now.
func (l *Limit) Used() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.used
}

func (l *Limit) join(p *Pool) {
	l.mu.Lock()
	l.members[p] = struct{}{}
	l.mu.Unlock()
}

func (l *Limit) take() bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.max > 0 && l.used >= l.max {
		return false
	}
	l.used++
	return true
}

// release gives a connection back and returns the starved pools to wake;
// the caller holds its pool's lock, so it wakes each on a goroutine of
// its own (wakeLater).
func (l *Limit) release() []*Pool {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.used--
	return l.takeStarved()
}

// takeStarved empties the starved list; l.mu is held. Every starved pool
// gets to try again: one gets the freed connection, the others starve
// anew.
func (l *Limit) takeStarved() []*Pool {
	wake := l.starved
	l.starved = nil
	l.anyStarved.Store(false)
	return wake
}

// starve records p as waiting for room, unless there is room again
// (a connection closed since p looked): then it reports false, and p
// tries again rather than wait for a wake-up already gone by.
func (l *Limit) starve(p *Pool) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.max == 0 || l.used < l.max {
		return false
	}
	if !slices.Contains(l.starved, p) {
		l.starved = append(l.starved, p)
		l.anyStarved.Store(true)
	}
	return true
}

// hasStarved reports whether a pool other than p waits on the limit.
func (l *Limit) hasStarved(p *Pool) bool {
	if !l.anyStarved.Load() {
		return false
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, q := range l.starved {
		if q != p {
			return true
		}
	}
	return false
}

// others lists the member pools besides p, whose idle connections may be
// closed to make room for p.
func (l *Limit) others(p *Pool) []*Pool {
	l.mu.Lock()
	defer l.mu.Unlock()
	out := make([]*Pool, 0, len(l.members))
	for q := range l.members {
		if q != p {
			out = append(out, q)
		}
	}
	return out
}

// joinLimits registers p with its limits, for makeRoom; p.mu is held.
func (p *Pool) joinLimits() {
	for _, l := range p.opts.Limits {
		l.join(p)
	}
}

// takeLimits counts a connection about to be dialled against every limit,
// or against none; p.mu is held. blocked is the limit that refused.
func (p *Pool) takeLimits() (blocked *Limit) {
	for i, l := range p.opts.Limits {
		if !l.take() {
			for _, taken := range p.opts.Limits[:i] {
				p.wakeLater(taken.release())
			}
			return l
		}
	}
	return nil
}

// releaseLimits gives back a connection that closed or was never opened;
// p.mu is held.
func (p *Pool) releaseLimits() {
	for _, l := range p.opts.Limits {
		p.wakeLater(l.release())
	}
}

// wakeLater lets starved pools try again once the caller's lock is gone.
func (p *Pool) wakeLater(pools []*Pool) {
	for _, q := range pools {
		go q.retryStarved()
	}
}

// retryStarved gives a freed connection under a limit to the first
// waiter, who will dial; if the limit is taken again meanwhile, the pool
// starves anew.
func (p *Pool) retryStarved() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if len(p.waiters) == 0 || p.closed || p.total >= p.opts.MaxSize {
		return
	}
	p.passSlot()
}

// makeRoom closes an idle connection of another pool under blocked, and
// reports whether it found one. p.mu is not held.
func (p *Pool) makeRoom(blocked *Limit) bool {
	for _, q := range blocked.others(p) {
		if c := q.takeIdle(); c != nil {
			q.discard(c)
			return true
		}
	}
	return false
}

// takeIdle removes the least recently used idle connection, if any.
func (p *Pool) takeIdle() *Conn {
	p.mu.Lock()
	defer p.mu.Unlock()
	if len(p.idle) == 0 {
		return nil
	}
	c := p.idle[0]
	p.idle = p.idle[1:]
	return c
}

// limitStarved reports whether another pool waits on one of p's limits,
// so that a connection p is done with should close rather than sit idle.
// p.mu is held.
func (p *Pool) limitStarved() bool {
	for _, l := range p.opts.Limits {
		if l.hasStarved(p) {
			return true
		}
	}
	return false
}
