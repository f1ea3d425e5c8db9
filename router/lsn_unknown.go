package router

import (
	"math"
	"sync/atomic"
	"time"

	"github.com/ai-ninja/pgninja/parser"
)

// unknownLSN is what a read must wait for while a commit it depends on has
// no known position: no replica reaches it, so the read goes to the
// primary.
const unknownLSN = LSN(math.MaxUint64)

// unknownCommits are commits made through the proxy whose WAL position
// could not be read (the read after them failed). What they wrote is
// required at unknownLSN until the health checker samples the primary's
// position after them (Settle). The maps count pending commits per table
// and client key; the counters let the hot paths skip the lock.
type unknownCommits struct {
	pending []unknownCommit // guarded by LSNTracker.mu
	tables  map[string]int  // guarded by LSNTracker.mu
	clients map[string]int  // guarded by LSNTracker.mu
	n       atomic.Int32    // len(pending)
	schema  atomic.Int32    // pending commits that changed the schema
}

type unknownCommit struct {
	client string
	tables []string
	schema bool
	at     time.Time
}

// NoteUnknown records a commit made at (or before) at whose position is not
// known: by client (may be empty), writing tables, changing the schema or
// not. Until Settle, the reads that would have waited for its position go
// to the primary.
func (t *LSNTracker) NoteUnknown(client string, tables []string, schema bool, at time.Time) {
	u := &t.unknown
	t.mu.Lock()
	defer t.mu.Unlock()
	u.pending = append(u.pending, unknownCommit{client: client, tables: tables, schema: schema, at: at})
	u.n.Add(1)
	if schema {
		u.schema.Add(1)
	}
	if client != "" {
		u.clients[client]++
	}
	for _, name := range tables {
		u.tables[parser.TableKey(name)]++
	}
}

// Settle gives the commits noted before sampled the position lsn, the
// primary's WAL flush position read by a query sent at sampled: each of
// them was acknowledged, and so flushed, before it.
func (t *LSNTracker) Settle(lsn LSN, sampled time.Time) {
	u := &t.unknown
	if u.n.Load() == 0 || lsn == 0 {
		return
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	keep := u.pending[:0]
	for _, c := range u.pending {
		if !c.at.Before(sampled) {
			keep = append(keep, c)
			continue
		}
		// The position is recorded before the commit stops counting
		// as unknown: a reader in between sees one or the other.
		t.bumpMax(lsn)
		if c.schema {
			t.NoteSchema(lsn)
			u.schema.Add(-1)
		}
		if c.client != "" {
			t.clients[c.client] = max(t.clients[c.client], lsn)
			countDown(u.clients, c.client)
		}
		for _, name := range c.tables {
			k := parser.TableKey(name)
			t.tables[k] = max(t.tables[k], lsn)
			countDown(u.tables, k)
		}
		u.n.Add(-1)
	}
	clear(u.pending[len(keep):])
	u.pending = keep
}

func countDown(m map[string]int, k string) {
	if m[k] <= 1 {
		delete(m, k)
		return
	}
	m[k]--
}
