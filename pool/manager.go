package pool

import (
	"context"
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
}

// NewManager makes a Manager. dial may be nil for the real Dial.
func NewManager(dial DialFunc) *Manager {
	return &Manager{dial: dial, pools: map[Key]*Pool{}}
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
