package proxy

// A client that described a statement relies on the shape of its rows.
// PostgreSQL refuses to run a prepared statement whose result a schema
// change reshaped ("cached plan must not change result type"). Through a
// transaction pool the statement may have to be prepared again on another
// server connection, where it would quietly take the new shape; these
// checks find such statements before the request goes out, so that
// building it refuses them as PostgreSQL does.

import (
	"bytes"
	"context"
	"encoding/binary"
	"slices"

	"github.com/ai-ninja/pgninja/internal/wire"
	"github.com/ai-ninja/pgninja/pool"
	"github.com/jackc/pgx/v5/pgproto3"
)

// resultShape is what of a RowDescription a client relies on when it runs
// a statement it described: each column's name, type and type modifier.
// Table OIDs and column numbers may change under it (a table made anew)
// as they may under PostgreSQL's own check. NoData is "n". ok is false for
// a malformed body.
func resultShape(typ byte, body []byte) (shape string, ok bool) {
	b, ok := appendShape(nil, typ, body)
	return string(b), ok
}

// appendShape is resultShape into dst, for a caller that keeps the shape
// only when it changed.
func appendShape(dst []byte, typ byte, body []byte) ([]byte, bool) {
	if typ == 'n' {
		return append(dst, 'n'), true
	}
	if len(body) < 2 {
		return dst, false
	}
	n := int(binary.BigEndian.Uint16(body))
	rest := body[2:]
	for i := 0; i < n; i++ {
		end := bytes.IndexByte(rest, 0)
		if end < 0 || len(rest) < end+1+18 {
			return dst, false
		}
		f := rest[end+1:]
		dst = append(dst, rest[:end+1]...)
		dst = append(dst, f[6:10]...)  // type OID
		dst = append(dst, f[12:16]...) // type modifier
		rest = f[18:]
	}
	return dst, true
}

// staleStatements lists the client's statements the collected request
// binds or describes, queries whose shape the client was shown (not
// utility statements, whose result PostgreSQL lets change), and that c
// lacks: prepared on c now, against the schema of now, their rows might
// have another shape. So might those of a copy c holds that was seen
// with another shape than the client's (prepared for another client
// after a schema change); c closes it, and it is checked as if lacking.
// Whether the schema changed is not asked, since a change made around the
// proxy is seen by nobody; the check costs a round trip only where a
// statement is prepared anew.
func (s *Session) staleStatements(c *pool.Conn) []*clientStmt {
	if len(s.stmts) == 0 {
		// Only named statements are checked, and a driver's unnamed
		// ones leave nothing to look for: no walk over the request.
		return nil
	}
	st := stateOf(c, s.st.cfg.Pool.MaxPreparedStatements)
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
		// Indexed by the name's bytes, which costs no allocation on
		// every Bind; a failed Parse leaves no statement (see stmt).
		cs := s.stmts[string(name)]
		if cs == nil || cs.failed.Load() || cs.server == "" || cs.changed.Load() || cs.shape.Load() == nil ||
			slices.Contains(stale, cs) || st.has(cs.server) && !st.reshaped(cs.server, *cs.shape.Load()) ||
			!s.classOf(cs).FixedResult {
			continue
		}
		stale = append(stale, cs)
	}
	return stale
}

// vetStatementsInUse is vetStatements for a server connection the
// session already holds (inside a transaction), whose answers its relay
// reads: each Describe goes out as a request of the proxy's own, and the
// request waits for the relay's verdict. Inside a transaction the check
// runs in a savepoint, so that its own failure cannot abort the
// transaction. In a failed transaction the server refuses the request
// anyway, and nothing of the proxy's may come between the parts of a
// batch sent in parts.
//
// It reports false when the connection was lost meanwhile (the client has
// been told).
func (s *Session) vetStatementsInUse(c *pool.Conn) bool {
	s.mu.Lock()
	status := s.txStatus
	s.mu.Unlock()
	if status == 'E' {
		return true
	}
	for _, cs := range s.staleStatements(c) {
		done := make(chan struct{})
		s.mu.Lock()
		if s.lease != c {
			s.mu.Unlock()
			return false
		}
		if n := len(s.pending); n > 0 && s.pending[n-1].open {
			s.mu.Unlock()
			return true
		}
		leaseDone := s.leaseEnded()
		var msg []byte
		if status == 'T' {
			// A statement that no longer parses (its table dropped)
			// would abort the client's transaction here, and the client
			// get 25P02 where PostgreSQL gives the table's error: the
			// check runs in a savepoint it always rolls back, and the
			// request's own Parse meets the error.
			s.pending = append(s.pending, expect{injected: true})
			msg = appendQuery(msg, "SAVEPOINT "+vetSavepoint)
		}
		s.pending = append(s.pending, expect{injected: true, vet: cs, vetDone: done})
		msg = append(append(append(msg, cs.unnamedParse()...), describeUnnamed...), syncMsg...)
		if status == 'T' {
			s.pending = append(s.pending, expect{injected: true})
			msg = appendQuery(msg, "ROLLBACK TO SAVEPOINT "+vetSavepoint+"; RELEASE SAVEPOINT "+vetSavepoint)
		}
		s.mu.Unlock()
		s.writeServer(c, msg)
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

// vetSavepoint is the savepoint vetStatementsInUse checks statements in.
const vetSavepoint = "pgninja_shape_check"

var (
	describeUnnamed = wire.Append(nil, &pgproto3.Describe{ObjectType: 'S'})
	syncMsg         = wire.Append(nil, &pgproto3.Sync{})
)

// vetStatements runs before a request goes out on a server connection
// just leased. A statement the request binds or describes that the
// connection lacks is prepared there again, planned against the schema of
// now; if the schema changed since the client parsed it, its rows might
// no longer have the shape the client was shown, which
// PostgreSQL refuses ("cached plan must not change result type") rather
// than return. Each such statement is described here first, as the
// unnamed statement (which no request relies on across batches), and
// marked changed when its shape differs, so that building the request
// refuses it.
func (s *Session) vetStatements(c *pool.Conn) error {
	for _, cs := range s.staleStatements(c) {
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
// statement names, as the bytes of body.
func boundOrDescribed(typ byte, body []byte) ([]byte, bool) {
	switch typ {
	case 'B':
		if i := bytes.IndexByte(body, 0); i >= 0 {
			body = body[i+1:] // past the portal's name
		} else {
			return nil, false
		}
	case 'D':
		if len(body) < 2 || body[0] != 'S' {
			return nil, false
		}
		body = body[1:]
	default:
		return nil, false
	}
	i := bytes.IndexByte(body, 0)
	return body[:max(i, 0)], i >= 0
}
