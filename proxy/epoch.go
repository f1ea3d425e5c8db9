package proxy

import (
	"bytes"
	"sync"
	"sync/atomic"
)

// schemaEpochs counts, per server database, the schema changes the proxy
// has noticed. The epoch is part of a shared prepared statement's
// server-side name: a client that prepares a statement after a change gets
// a fresh server statement, as it would from PostgreSQL directly, instead
// of one planned against the old schema (whose parameter types may name a
// type since dropped). Statements prepared before keep their server copy,
// and fail after the change exactly as they would without the proxy.
type schemaEpochs struct {
	mu   sync.Mutex
	byDB map[string]*atomic.Uint64
}

func newSchemaEpochs() *schemaEpochs { return &schemaEpochs{byDB: map[string]*atomic.Uint64{}} }

func (e *schemaEpochs) forDB(db string) *atomic.Uint64 {
	e.mu.Lock()
	defer e.mu.Unlock()
	n, ok := e.byDB[db]
	if !ok {
		n = new(atomic.Uint64)
		e.byDB[db] = n
	}
	return n
}

// staleStatementCodes are the SQLSTATEs PostgreSQL reports when a prepared
// statement outlived a schema change the proxy did not see (DDL run around
// it): "cached plan must not change result type" and "cache lookup failed
// for type".
var staleStatementCodes = [][]byte{[]byte("\x00C0A000\x00"), []byte("\x00CXX000\x00")}

// staleStatementError reports whether an ErrorResponse body may come from a
// prepared statement planned against an older schema.
func staleStatementError(body []byte) bool {
	for _, code := range staleStatementCodes {
		if bytes.Contains(body, code) {
			return true
		}
	}
	return false
}
