package proxy

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"slices"
	"sync/atomic"

	"github.com/ai-ninja/pgninja/internal/wire"
	"github.com/ai-ninja/pgninja/pool"
	"github.com/jackc/pgx/v5/pgproto3"
)

// clientStmt is a statement a client prepared with Parse. On the servers
// it lives under a name derived from its text and parameter types, so
// identical statements from different clients share one server statement
// and different ones never collide.
type clientStmt struct {
	server string // server-side name; "" for the unnamed statement
	hash   uint64
	// parse is a complete Parse message under the server-side name, kept
	// to prepare the statement on server connections that lack it.
	parse []byte
	// query is classified afresh at each use (an LRU hit): a verdict kept
	// from Parse time would miss a later volatility reload.
	query string
	// failed: the server refused or skipped the Parse (set by the relay).
	failed atomic.Bool
	// epoch is the database's schema epoch when the client parsed it.
	epoch uint64
	// shape is the result the client was last shown for the statement
	// (see resultShape), nil until it describes it; set by the relay.
	shape atomic.Pointer[string]
	// changed: since the client parsed it, its result no longer has the
	// shape the client was shown, so PostgreSQL would refuse it with
	// "cached plan must not change result type" until parsed again.
	changed atomic.Bool
}

// stmt returns the client's Parse'd statement of that name: nil if it has
// none, or if its Parse failed, which in PostgreSQL leaves no statement.
func (s *Session) stmt(name string) *clientStmt {
	if cs := s.stmts[name]; cs != nil && !cs.failed.Load() {
		return cs
	}
	return nil
}

// sqlStmt is a statement prepared with SQL PREPARE, replayed by its text.
type sqlStmt struct {
	text string
	hash uint64
	// failed: the PREPARE failed, so PostgreSQL has no statement of
	// this name. Set by the relay.
	failed atomic.Bool
}

// sqlStmt returns the client's SQL-prepared statement of that name: nil if
// it has none, or if its PREPARE failed.
func (s *Session) sqlStmt(name string) *sqlStmt {
	ps := s.sqlStmts[name]
	if ps != nil && ps.failed.Load() {
		delete(s.sqlStmts, name)
		return nil
	}
	return ps
}

// parseMsg splits a Parse body: name, query, and the raw parameter types.
func parseMsg(body []byte) (name, query string, types []byte, ok bool) {
	i := bytes.IndexByte(body, 0)
	if i < 0 {
		return
	}
	j := bytes.IndexByte(body[i+1:], 0)
	if j < 0 {
		return
	}
	return string(body[:i]), string(body[i+1 : i+1+j]), body[i+2+j:], true
}

// newClientStmt builds the server-side form of a client's Parse, for the
// database's current schema epoch.
func newClientStmt(name, query string, types []byte, epoch uint64) *clientStmt {
	sum := sha256.New()
	sum.Write(binary.BigEndian.AppendUint64(nil, epoch))
	sum.Write([]byte(query))
	sum.Write([]byte{0})
	sum.Write(types)
	digest := sum.Sum(nil)
	cs := &clientStmt{hash: binary.BigEndian.Uint64(digest), query: query, epoch: epoch}
	if name != "" {
		cs.server = "pgninja_" + hex.EncodeToString(digest[:16])
	}
	body := make([]byte, 0, len(cs.server)+len(query)+len(types)+2)
	body = append(append(body, cs.server...), 0)
	body = append(append(body, query...), 0)
	body = append(body, types...)
	cs.parse = append(wire.AppendHeader(make([]byte, 0, len(body)+5), 'P', len(body)), body...)
	return cs
}

// nameField splits a message body that starts with a NUL-terminated name
// (Bind: portal then statement; Describe/Close: a kind byte then name).
func nameField(body []byte) (string, []byte, bool) {
	i := bytes.IndexByte(body, 0)
	if i < 0 {
		return "", nil, false
	}
	return string(body[:i]), body[i+1:], true
}

// appendRenamed appends a message whose body is prefix, name, NUL, rest.
func appendRenamed(dst []byte, typ byte, prefix []byte, name string, rest []byte) []byte {
	n := len(prefix) + len(name) + 1 + len(rest)
	dst = wire.AppendHeader(dst, typ, n)
	dst = append(dst, prefix...)
	dst = append(append(dst, name...), 0)
	return append(dst, rest...)
}

// noopStatement never exists: closing it answers CloseComplete and does
// nothing, which is how a client's Close of a shared statement is
// acknowledged in order without touching the server's copy.
const noopStatement = "pgninja_noop"

// emptyParse parses the empty query as the unnamed statement: it answers
// ParseComplete, standing in for a client Parse whose statement the server
// connection already holds.
var emptyParse = []byte{'P', 0, 0, 0, 8, 0, 0, 0, 0}

// closeUnnamed closes the unnamed statement.
var closeUnnamed = []byte{'C', 0, 0, 0, 6, 'S', 0}

// refusedParse is a Parse that fails without side effects: a syntax error
// under a name of its own, so that no statement is replaced.
var refusedParse = wire.Append(nil, &pgproto3.Parse{Name: "pgninja_refused", Query: "pgninja refused"})

// unnamedParse is cs's Parse as the unnamed statement, which replaces
// nothing another client relies on.
func (cs *clientStmt) unnamedParse() []byte {
	rest := cs.parse[wire.HeaderLen+len(cs.server):] // from the name's NUL
	return append(wire.AppendHeader(make([]byte, 0, wire.HeaderLen+len(rest)), 'P', len(rest)), rest...)
}

// resultShape is what of a RowDescription a client relies on when it runs
// a statement it described: each column's name, type and type modifier.
// Table OIDs and column numbers may change under it (a table made anew)
// as they may under PostgreSQL's own check. NoData is "n". ok is false for
// a malformed body.
func resultShape(typ byte, body []byte) (shape string, ok bool) {
	if typ == 'n' {
		return "n", true
	}
	if len(body) < 2 {
		return "", false
	}
	n := int(binary.BigEndian.Uint16(body))
	b := make([]byte, 0, len(body))
	rest := body[2:]
	for i := 0; i < n; i++ {
		end := bytes.IndexByte(rest, 0)
		if end < 0 || len(rest) < end+1+18 {
			return "", false
		}
		f := rest[end+1:]
		b = append(b, rest[:end+1]...)
		b = append(b, f[6:10]...)  // type OID
		b = append(b, f[12:16]...) // type modifier
		rest = f[18:]
	}
	return string(b), true
}

// staleStatements lists the client's statements the collected request
// binds or describes that st lacks, that the client parsed before the
// latest schema change and whose shape it was shown: prepared on st now,
// their rows might have another shape.
func (s *Session) staleStatements(st *serverState) []*clientStmt {
	cur := s.epoch.Load()
	var stale []*clientStmt
	for req := s.req; len(req) >= wire.HeaderLen; {
		typ := req[0]
		n := int(binary.BigEndian.Uint32(req[1:5])) + 1
		body := req[wire.HeaderLen:n]
		req = req[n:]
		name, ok := boundOrDescribed(typ, body)
		if !ok {
			continue
		}
		cs := s.stmt(name)
		if cs == nil || cs.server == "" || cs.epoch == cur || cs.changed.Load() || cs.shape.Load() == nil ||
			slices.Contains(stale, cs) || st.has(cs.server) {
			continue
		}
		stale = append(stale, cs)
	}
	return stale
}

// vetStatementsInUse is vetStatements for a server connection the
// session already holds (inside a transaction), whose answers its relay
// reads: each Describe goes out as a request of the proxy's own, and the
// request waits for the relay's verdict. In a failed transaction the
// server refuses the request anyway.
//
// It reports false when the connection was lost meanwhile (the client has
// been told).
func (s *Session) vetStatementsInUse(c *pool.Conn) bool {
	if s.inFailedTxn() {
		return true
	}
	for _, cs := range s.staleStatements(stateOf(c, s.st.cfg.Pool.MaxPreparedStatements)) {
		done := make(chan struct{})
		s.mu.Lock()
		if s.lease != c {
			s.mu.Unlock()
			return false
		}
		leaseDone := s.leaseDone
		s.pending = append(s.pending, expect{injected: true, vet: cs, vetDone: done})
		s.mu.Unlock()
		msg := append(cs.unnamedParse(), describeUnnamed...)
		s.writeServer(c, append(msg, syncMsg...))
		select {
		case <-done:
		case <-leaseDone:
			return false
		}
	}
	return true
}

// vetAnswer takes one message of the answer to vetStatementsInUse's
// Describe: the RowDescription or NoData marks the statement changed when
// its shape is not the one the client was shown. An error (the statement
// no longer parses) is left for the request's own Parse to meet.
func (s *Session) vetAnswer(c *pool.Conn, cs *clientStmt, typ byte, n int, scratch *[]byte) error {
	if typ != 'T' && typ != 'n' {
		return wire.SkipBody(c.R, n)
	}
	body, err := wire.Body(c.R, n, scratch)
	if err != nil {
		return err
	}
	if now, ok := resultShape(typ, body); ok && now != *cs.shape.Load() {
		cs.changed.Store(true)
	}
	return nil
}

var (
	describeUnnamed = wire.Append(nil, &pgproto3.Describe{ObjectType: 'S'})
	syncMsg         = wire.Append(nil, &pgproto3.Sync{})
)

// vetStatements runs before a request goes out on a server connection
// just leased. A statement the request binds or describes that the
// connection lacks is prepared there again, planned against the schema of
// now; if the client parsed it before a schema change the proxy saw, its
// rows might no longer have the shape the client was shown, which
// PostgreSQL refuses ("cached plan must not change result type") rather
// than return. Each such statement is described here first, as the
// unnamed statement (which no request relies on across batches), and
// marked changed when its shape differs, so that building the request
// refuses it.
func (s *Session) vetStatements(c *pool.Conn) error {
	for _, cs := range s.staleStatements(stateOf(c, s.st.cfg.Pool.MaxPreparedStatements)) {
		ctx, cancel := context.WithTimeout(context.Background(), s.st.cfg.Pool.ConnectTimeout)
		t, desc, srvErr, err := c.Describe(ctx, cs.unnamedParse())
		cancel()
		if err != nil {
			return err
		}
		if srvErr != nil {
			continue // the request's own Parse meets it, and says so
		}
		if now, ok := resultShape(t, desc); ok && now != *cs.shape.Load() {
			cs.changed.Store(true)
		}
	}
	return nil
}

// boundOrDescribed is the statement name a Bind or a Describe of a
// statement names.
func boundOrDescribed(typ byte, body []byte) (string, bool) {
	switch typ {
	case 'B':
		if _, rest, ok := nameField(body); ok {
			name, _, ok := nameField(rest)
			return name, ok
		}
	case 'D':
		if len(body) >= 2 && body[0] == 'S' {
			name, _, ok := nameField(body[1:])
			return name, ok
		}
	}
	return "", false
}
