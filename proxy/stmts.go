package proxy

import (
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"strings"
	"sync/atomic"

	"github.com/ai-ninja/pgninja/internal/wire"
	"github.com/ai-ninja/pgninja/parser"
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
	// query is classified through memo (see classOf), which answers from
	// memory until a volatility reload could change the verdict.
	query string
	memo  parser.Memo
	// signals: the text names a *_backend function, so a Bind of it may
	// signal a client (see signal.go).
	signals bool
	// failed: the server refused or skipped the Parse (set by the relay).
	failed atomic.Bool
	// shape is the result the client was last shown for the statement
	// (see resultShape), nil until it describes it; set by the relay.
	shape atomic.Pointer[string]
	// changed: since the client parsed it, its result no longer has the
	// shape the client was shown, so PostgreSQL would refuse it with
	// "cached plan must not change result type" until parsed again.
	changed atomic.Bool
}

// classOf classifies cs. Every Bind and Describe of it asks, so its
// verdict is kept: a driver that sends the unnamed statement again for
// each query reuses it too (see buildParse).
func (s *Session) classOf(cs *clientStmt) *parser.Classification {
	return s.classifier.ClassifyMemo(cs.query, &cs.memo)
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
	// ran is how the last EXECUTE of it classified (see executing), for
	// that EXECUTE's classification exec and the PREPARE's prep. The
	// session goroutine's alone.
	ran, exec, prep *parser.Classification
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
// database's current schema epoch and the client's parse settings (see
// parseSettings): clients share a server copy only where both agree.
func newClientStmt(name, query string, types []byte, epoch, parseHash uint64) *clientStmt {
	sum := sha256.New()
	sum.Write(binary.BigEndian.AppendUint64(nil, epoch))
	sum.Write(binary.BigEndian.AppendUint64(nil, parseHash))
	sum.Write([]byte(query))
	sum.Write([]byte{0})
	sum.Write(types)
	digest := sum.Sum(nil)
	cs := &clientStmt{hash: binary.BigEndian.Uint64(digest), query: query, signals: mentionsBackend(query, strings.IndexByte)}
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

// types returns the parameter types the client's Parse declared, raw.
func (cs *clientStmt) types() []byte {
	_, _, types, _ := parseMsg(cs.parse[5:])
	return types
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
