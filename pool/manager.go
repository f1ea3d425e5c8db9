package pool

import (
	"context"
	"fmt"
	"sync"
	"time"
)

// Key names one pool.
type Key struct {
	Backend  string
	Database string
	User     string
}

// Manager owns every pool and runs their upkeep.
type Manager struct {
	dial DialFunc

	mu    sync.Mutex
	pools map[Key]*Pool
	// dbLimits and userLimits are shared by the pools of one server
	// database, or one server user, on one backend (see Limit).
	dbLimits, userLimits map[[2]string]*Limit
}

// NewManager makes a Manager. dial may be nil for the real Dial.
func NewManager(dial DialFunc) *Manager {
	return &Manager{dial: dial, pools: map[Key]*Pool{},
		dbLimits: map[[2]string]*Limit{}, userLimits: map[[2]string]*Limit{}}
}

// Limits returns the limits a pool for k is under: its database's on its
// backend, capped at db, and its user's, capped at user (0: no cap). They
// are made at first use and the same objects after; the caps given apply
// to all pools under them.
func (m *Manager) Limits(k Key, db, user int) []*Limit {
	m.mu.Lock()
	defer m.mu.Unlock()
	get := func(set map[[2]string]*Limit, setting, name string, max int) *Limit {
		l, ok := set[[2]string{k.Backend, name}]
		if !ok {
			l = NewLimit(max)
			l.Name = fmt.Sprintf("%s of %q on %s", setting, name, k.Backend)
			set[[2]string{k.Backend, name}] = l
		} else if l.Max() != max {
			l.SetMax(max)
		}
		return l
	}
	return []*Limit{get(m.dbLimits, "max_db_connections", k.Database, db),
		get(m.userLimits, "max_user_connections", k.User, user)}
}

// SetLimitCaps applies a reload's caps to every limit: dbCap and userCap
// give the cap of a server database and of a server user by name.
func (m *Manager) SetLimitCaps(dbCap, userCap func(name string) int) {
	m.mu.Lock()
	defer m.mu.Unlock()
	for k, l := range m.dbLimits {
		l.SetMax(dbCap(k[1]))
	}
	for k, l := range m.userLimits {
		l.SetMax(userCap(k[1]))
	}
}

// LimitUse is what the limits of one server database or user hold,
// summed over the backends: the connections counted and the cap (0:
// none; the largest, should backends differ).
type LimitUse struct{ Used, Max int }

// DatabaseUse and UserUse report the limits of a server database or a
// server user.
func (m *Manager) DatabaseUse(name string) LimitUse { return m.use(m.dbLimits, name) }
func (m *Manager) UserUse(name string) LimitUse     { return m.use(m.userLimits, name) }

func (m *Manager) use(set map[[2]string]*Limit, name string) LimitUse {
	m.mu.Lock()
	defer m.mu.Unlock()
	var u LimitUse
	for k, l := range set {
		if k[1] == name {
			u.Used += l.Used()
			u.Max = max(u.Max, l.Max())
		}
	}
	return u
}

// Get returns the pool for k, creating it with t and o on first use. An
// existing pool takes o and t, so a reload reaches it.
func (m *Manager) Get(k Key, t Target, o Options) *Pool {
	m.mu.Lock()
	defer m.mu.Unlock()
	p, ok := m.pools[k]
	if !ok {
		p = New(t, o, m.dial)
		m.pools[k] = p
		return p
	}
	p.SetOptions(o)
	p.SetTarget(t)
	return p
}

// Each calls fn for every pool.
func (m *Manager) Each(fn func(Key, *Pool)) {
	m.mu.Lock()
	pools := make(map[Key]*Pool, len(m.pools))
	for k, p := range m.pools {
		pools[k] = p
	}
	m.mu.Unlock()
	for k, p := range pools {
		fn(k, p)
	}
}

// Run maintains every pool once per interval until ctx ends.
func (m *Manager) Run(ctx context.Context, interval time.Duration) {
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case now := <-t.C:
			m.Each(func(_ Key, p *Pool) { p.Maintain(ctx, now) })
		}
	}
}

// Close closes every pool.
func (m *Manager) Close() {
	m.Each(func(_ Key, p *Pool) { p.Close() })
}
