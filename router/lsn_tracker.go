package router

import (
	"fmt"
	"sync"
	"sync/atomic"

	"github.com/ai-ninja/pgninja/parser"
)

// Consistency selects how stale a replica read may be.
type Consistency uint8

const (
	// ReadYourWrites (the default): a client's reads see its own committed
	// writes, and every schema change made through this proxy.
	ReadYourWrites Consistency = iota
	// TableConsistency: additionally, reads of a table see every write to
	// it made through this proxy, by any client.
	TableConsistency
	// Eventual: any healthy replica, however far behind (within the lag
	// limits).
	Eventual
)

func (c Consistency) String() string {
	switch c {
	case TableConsistency:
		return "table"
	case Eventual:
		return "eventual"
	}
	return "read_your_writes"
}

// ParseConsistency accepts the config spellings read_your_writes, table,
// eventual ("" means the default).
func ParseConsistency(s string) (Consistency, error) {
	switch s {
	case "", "read_your_writes":
		return ReadYourWrites, nil
	case "table":
		return TableConsistency, nil
	case "eventual":
		return Eventual, nil
	}
	return 0, fmt.Errorf("consistency must be read_your_writes, table or eventual, got %q", s)
}

// MarshalText renders the config spelling.
func (c Consistency) MarshalText() ([]byte, error) { return []byte(c.String()), nil }

// UnmarshalText parses the config spelling.
func (c *Consistency) UnmarshalText(b []byte) error {
	v, err := ParseConsistency(string(b))
	*c = v
	return err
}

// LSNTracker remembers WAL positions that replica reads must wait for:
// the last commit of each client key and the last write to each table. It
// is shared by all sessions of a proxy and safe for concurrent use.
//
// Tables are keyed by unqualified name, so "public.calls" and "calls" (and
// "archive.calls") share an entry: over-matching only sends a read to the
// primary needlessly, while under-matching would return stale rows.
// The classifier adds the tables a named relation reaches (a view's
// tables, the tables a partition belongs to, cascades), and a write that
// may reach tables no name tells (a procedure, a function that is not a
// built-in, a volatile trigger, a rule) counts as a write of every table
// (AnyTable). Relations made around the proxy are known once the catalog
// is next read (within a minute); read_your_writes covers the writing
// client itself either way.
//
// Schema changes are shared with every client in every mode but eventual:
// a table one client creates (or alters) must not be missing for another
// whose read lands on a replica that has not replayed it yet, as after a
// migration or a "pgbench -i" run through the proxy.
type LSNTracker struct {
	mu      sync.RWMutex
	tables  map[string]LSN
	clients map[string]LSN
	max     atomic.Uint64
	schema  atomic.Uint64
	unknown unknownCommits
}

// NewLSNTracker returns an empty tracker.
func NewLSNTracker() *LSNTracker {
	return &LSNTracker{tables: make(map[string]LSN), clients: make(map[string]LSN),
		unknown: unknownCommits{tables: make(map[string]int), clients: make(map[string]int)}}
}

// NoteCommit records a commit at lsn by client (may be empty) that wrote
// tables.
func (t *LSNTracker) NoteCommit(client string, tables []string, lsn LSN) {
	if lsn == 0 {
		return
	}
	t.bumpMax(lsn)
	t.mu.Lock()
	defer t.mu.Unlock()
	if client != "" && lsn > t.clients[client] {
		t.clients[client] = lsn
	}
	for _, name := range tables {
		k := parser.TableKey(name)
		if lsn > t.tables[k] {
			t.tables[k] = lsn
		}
	}
}

// NoteSchema records a commit at lsn that changed the schema.
func (t *LSNTracker) NoteSchema(lsn LSN) {
	t.bumpMax(lsn)
	for {
		cur := t.schema.Load()
		if uint64(lsn) <= cur || t.schema.CompareAndSwap(cur, uint64(lsn)) {
			return
		}
	}
}

// Schema is the LSN of the last schema change recorded: every client's
// reads wait for it.
func (t *LSNTracker) Schema() LSN {
	if t.unknown.schema.Load() > 0 {
		return unknownLSN
	}
	return LSN(t.schema.Load())
}

// NoteWrite records a write to tables committed at lsn.
func (t *LSNTracker) NoteWrite(tables []string, lsn LSN) { t.NoteCommit("", tables, lsn) }

func (t *LSNTracker) bumpMax(lsn LSN) {
	for {
		cur := t.max.Load()
		if uint64(lsn) <= cur || t.max.CompareAndSwap(cur, uint64(lsn)) {
			return
		}
	}
}

// Required is the highest last-write LSN among tables (0 if none known).
func (t *LSNTracker) Required(tables []string) LSN {
	if len(tables) == 0 {
		return 0
	}
	t.mu.RLock()
	defer t.mu.RUnlock()
	var req LSN
	for _, name := range tables {
		k := parser.TableKey(name)
		if t.unknown.tables[k] > 0 {
			return unknownLSN
		}
		if l := t.tables[k]; l > req {
			req = l
		}
	}
	if t.unknown.tables[AnyTable] > 0 {
		return unknownLSN
	}
	return max(req, t.tables[AnyTable])
}

// Client is the last commit LSN recorded for client.
func (t *LSNTracker) Client(client string) LSN {
	if client == "" {
		return 0
	}
	t.mu.RLock()
	defer t.mu.RUnlock()
	if t.unknown.clients[client] > 0 {
		return unknownLSN
	}
	return t.clients[client]
}

// Max is the highest LSN recorded: what a transaction must wait for under
// table consistency when the tables it will read are not known yet.
func (t *LSNTracker) Max() LSN {
	if t.unknown.n.Load() > 0 {
		return unknownLSN
	}
	return LSN(t.max.Load())
}

// Prune forgets entries at or below replayed (typically
// Snapshot.MinReplayLSN): every replica already satisfies them. The health
// checker calls it after each poll so the maps stay small.
func (t *LSNTracker) Prune(replayed LSN) {
	if replayed == 0 {
		return
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	for k, l := range t.tables {
		if l <= replayed {
			delete(t.tables, k)
		}
	}
	for k, l := range t.clients {
		if l <= replayed {
			delete(t.clients, k)
		}
	}
}

// Len is the number of tables and clients tracked.
func (t *LSNTracker) Len() int {
	t.mu.RLock()
	defer t.mu.RUnlock()
	return len(t.tables) + len(t.clients)
}
