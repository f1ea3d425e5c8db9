package proxy

import (
	"sync"

	"github.com/ai-ninja/pgninja/pool"
)

// poolHome names the database and user entries, as clients name them,
// that a pool's size and minimum come from. Pools are keyed by server,
// database and user on the server side, so several entries may share
// one; the last login's entries decide, as its login sized the pool.
type poolHome struct{ db, user string }

// poolHomes remembers each pool's home, so that a reload or a console
// SET can size a pool again when nobody is logged in to it.
type poolHomes struct {
	mu    sync.Mutex
	homes map[pool.Key]poolHome
}

func (h *poolHomes) note(k pool.Key, home poolHome) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.homes == nil {
		h.homes = map[pool.Key]poolHome{}
	}
	h.homes[k] = home
}

func (h *poolHomes) get(k pool.Key) (poolHome, bool) {
	h.mu.Lock()
	defer h.mu.Unlock()
	home, ok := h.homes[k]
	return home, ok
}
