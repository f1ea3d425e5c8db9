package proxy

import (
	"maps"
	"sync"

	"github.com/ai-ninja/pgninja/pool"
	"github.com/hashicorp/golang-lru/v2/simplelru"
)

// Statement states on one server connection.
const (
	stmtPending uint8 = iota + 1 // Parse sent, answer not yet seen
	stmtPresent                  // ParseComplete seen
)

// serverState is what the proxy knows of one server connection's session
// state beyond its defaults. It lives in pool.Conn.State, so a reset (which
// calls Reset) forgets it together with the server.
type serverState struct {
	// params is the parameter set last applied, by hash.
	paramsHash uint64
	params     map[string]string

	// mu guards the statement maps: the session goroutine reads them when
	// building a batch while the relay confirms the previous one.
	mu sync.Mutex
	// stmts holds prepared statements by server-side name, least recently
	// used first out; evicted ones are closed on the server.
	stmts *simplelru.LRU[string, uint8]
	// evicted are names to close on the server in the next batch.
	evicted []string
	// dropping: a failed Parse is being forgotten, which is no eviction.
	dropping bool
	// sql holds SQL-level PREPAREs: name → hash of the PREPARE text. A
	// failed PREPARE is dropped by the relay.
	sql map[string]uint64
	// shapes holds, by server-side name, the result shape the last
	// Describe of a statement here showed (see reshaped).
	shapes map[string]string
	// seqStamp changes with every statement that may set sequence
	// values here (see sequences.go).
	seqStamp uint64
	// conn is the connection this state describes.
	conn *pool.Conn
}

func stateOf(c *pool.Conn, maxStmts int) *serverState {
	if st, ok := c.State.(*serverState); ok {
		return st
	}
	st := &serverState{params: map[string]string{}, paramsHash: emptyParamsHash, sql: map[string]uint64{}, conn: c}
	st.stmts, _ = simplelru.NewLRU[string, uint8](maxStmts, func(name string, _ uint8) {
		delete(st.shapes, name)
		if !st.dropping {
			st.evicted = append(st.evicted, name)
		}
	})
	c.State = st
	return st
}

// Reset forgets everything after the pool's reset query has cleared the
// server (pool.Conn.State's Reset), keeping the maps and the LRU: making
// them anew for every session-mode lease was a tenth of a login's
// allocations.
func (st *serverState) Reset() {
	st.mu.Lock()
	defer st.mu.Unlock()
	clear(st.params)
	st.paramsHash = emptyParamsHash
	st.dropping = true // no statement is left to close
	st.stmts.Purge()
	st.dropping = false
	st.evicted = st.evicted[:0]
	clear(st.sql)
	clear(st.shapes)
	st.seqStamp = 0
}

// has reports whether a statement is (or is being) prepared, marking it
// recently used.
func (st *serverState) has(name string) bool {
	st.mu.Lock()
	defer st.mu.Unlock()
	_, ok := st.stmts.Get(name)
	return ok
}

// preparing records a Parse about to be sent.
func (st *serverState) preparing(name string) {
	st.mu.Lock()
	st.stmts.Add(name, stmtPending)
	delete(st.shapes, name)
	st.mu.Unlock()
}

// noteShape records the result shape a Describe of the statement name
// showed on this connection.
func (st *serverState) noteShape(name, shape string) {
	st.mu.Lock()
	if _, ok := st.stmts.Peek(name); ok {
		if st.shapes == nil {
			st.shapes = map[string]string{}
		}
		st.shapes[name] = shape
	}
	st.mu.Unlock()
}

// reshaped reports whether the connection's copy of statement name was
// seen with a result shape other than shape, the one a client was shown
// elsewhere. Clients with the same text share the copy, so it may have
// been prepared for another client after a schema change made around the
// proxy. Such a copy is closed (in the next batch) so that the request
// prepares and checks it anew.
func (st *serverState) reshaped(name, shape string) bool {
	st.mu.Lock()
	defer st.mu.Unlock()
	seen, ok := st.shapes[name]
	if !ok || seen == shape {
		return false
	}
	st.stmts.Remove(name)
	return true
}

func (st *serverState) confirm(name string) {
	st.mu.Lock()
	if v, ok := st.stmts.Peek(name); ok && v == stmtPending {
		st.stmts.Add(name, stmtPresent)
	}
	st.mu.Unlock()
}

func (st *serverState) drop(name string) {
	st.mu.Lock()
	if v, ok := st.stmts.Peek(name); ok && v == stmtPending {
		st.dropping = true
		st.stmts.Remove(name)
		st.dropping = false
	}
	st.mu.Unlock()
}

// forgetAll records that the server dropped every prepared statement
// (DEALLOCATE ALL, DISCARD ALL).
func (st *serverState) forgetAll() {
	st.mu.Lock()
	st.dropping = true
	st.stmts.Purge()
	st.dropping = false
	st.evicted = nil
	st.sql = map[string]uint64{}
	st.shapes = nil
	st.mu.Unlock()
}

// sqlHash is the hash of the PREPARE text the connection holds under name.
func (st *serverState) sqlHash(name string) (uint64, bool) {
	st.mu.Lock()
	defer st.mu.Unlock()
	h, ok := st.sql[name]
	return h, ok
}

// sqlNames lists the SQL-level statements the connection holds.
func (st *serverState) sqlNames() map[string]uint64 {
	st.mu.Lock()
	defer st.mu.Unlock()
	return maps.Clone(st.sql)
}

func (st *serverState) setSQL(name string, hash uint64) {
	st.mu.Lock()
	st.sql[name] = hash
	st.mu.Unlock()
}

func (st *serverState) forgetSQL(name string) {
	st.mu.Lock()
	delete(st.sql, name)
	st.mu.Unlock()
}

// sqlFailed forgets a PREPARE that failed, unless the name has since been
// prepared again.
func (st *serverState) sqlFailed(name string, hash uint64) {
	st.mu.Lock()
	if h, ok := st.sql[name]; ok && h == hash {
		delete(st.sql, name)
	}
	st.mu.Unlock()
}

// takeEvicted returns the statements to close, once.
func (st *serverState) takeEvicted() []string {
	st.mu.Lock()
	defer st.mu.Unlock()
	e := st.evicted
	st.evicted = nil
	return e
}
