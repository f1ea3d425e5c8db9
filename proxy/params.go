package proxy

import (
	"hash/fnv"
	"maps"
	"sort"
	"strings"
	"sync/atomic"

	"github.com/ai-ninja/pgninja/internal/wire"
	"github.com/ai-ninja/pgninja/parser"
	"github.com/ai-ninja/pgninja/pool"
	"github.com/jackc/pgx/v5/pgproto3"
)

// paramSet is the session settings a client has asked for: those from its
// startup packet, then those it SET since. Each setting is kept as the SQL
// that establishes it, so it can be replayed on any server connection, and
// the whole set has a hash, so checking whether a server connection
// already matches costs one comparison.
type paramSet struct {
	startup map[string]string // lower-cased name → startup value
	apply   map[string]string // lower-cased name → SQL that sets it
	hash    uint64
	// parseHash covers only the settings that change what a statement's
	// text means when it is prepared (see parseSettings). The session
	// goroutine reads it, without the session's lock, to name the server
	// copies of the statements it prepares.
	parseHash atomic.Uint64
}

// parseSettings are the settings under which the same statement text,
// prepared, means something else: the tables and functions its names
// resolve to, how its bytes and literals are read, constants folded at
// parse time. Server copies of prepared statements are shared only
// between clients that agree on all of them; otherwise a tenant's
// statement could run, prepared under another tenant's search_path, with
// that tenant's result shape (0A000 where PostgreSQL itself succeeds) or
// that tenant's time zone folded into its literals.
var parseSettings = map[string]bool{
	"search_path": true, "client_encoding": true, "standard_conforming_strings": true,
	"backslash_quote": true, "datestyle": true, "intervalstyle": true, "timezone": true,
	"transform_null_equals": true, "array_nulls": true, "lc_monetary": true,
}

func newParamSet(startup map[string]string) *paramSet {
	p := &paramSet{startup: make(map[string]string, len(startup))}
	for k, v := range startup {
		p.startup[strings.ToLower(k)] = v
	}
	p.resetAll()
	return p
}

// startupSQL uses set_config, which takes a value exactly as a startup
// packet does (a list such as search_path stays a list).
func startupSQL(name, value string) string {
	return "SELECT set_config(" + quoteLiteral(name) + ", " + quoteLiteral(value) + ", false)"
}

func (p *paramSet) resetAll() {
	p.apply = make(map[string]string, len(p.startup))
	for k, v := range p.startup {
		p.apply[k] = startupSQL(k, v)
	}
	p.rehash()
}

func (p *paramSet) rehash() {
	p.hash = hashParams(p.apply)
	parse := make(map[string]string, len(parseSettings))
	for k, v := range p.apply {
		if parseSettings[k] {
			parse[k] = v
		}
	}
	p.parseHash.Store(hashParams(parse))
}

// track applies the SET/RESET statements of a committed transaction (or
// of one statement outside any), in order; a ROLLBACK TO among them
// undoes those made since its savepoint, as PostgreSQL does.
func (p *paramSet) track(sets []parser.SetParam) {
	if len(sets) == 0 {
		return
	}
	type savepoint struct {
		name  string
		apply map[string]string
	}
	var savepoints []savepoint
	// last finds the newest savepoint of that name, which is the one
	// RELEASE and ROLLBACK TO mean.
	last := func(name string) int {
		for i := len(savepoints) - 1; i >= 0; i-- {
			if savepoints[i].name == name {
				return i
			}
		}
		return -1
	}
	for _, sp := range sets {
		switch {
		case sp.Savepoint == parser.SavepointDefine:
			savepoints = append(savepoints, savepoint{sp.SavepointName, maps.Clone(p.apply)})
		case sp.Savepoint == parser.SavepointRelease:
			if i := last(sp.SavepointName); i >= 0 {
				savepoints = savepoints[:i]
			}
		case sp.Savepoint == parser.SavepointRollback:
			if i := last(sp.SavepointName); i >= 0 {
				p.apply = maps.Clone(savepoints[i].apply)
				savepoints = savepoints[:i+1]
			}
		case sp.Local || sp.FromCurrent:
		case sp.ResetAll:
			p.resetAll()
		case sp.Reset:
			// RESET returns to the session default, which includes what
			// the startup packet set.
			if v, ok := p.startup[sp.Name]; ok {
				p.apply[sp.Name] = startupSQL(sp.Name, v)
			} else {
				delete(p.apply, sp.Name)
			}
		default:
			p.apply[sp.Name] = sp.Stmt
		}
	}
	p.rehash()
}

// forget drops the setting that stmt (from syncSQL) establishes: it no
// longer applies on the servers, and replaying it on every connection
// would only fail there again.
func (p *paramSet) forget(stmt string) {
	for k, sql := range p.apply {
		if sql == stmt {
			delete(p.apply, k)
		}
	}
	p.rehash()
}

func hashParams(m map[string]string) uint64 {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	h := fnv.New64a()
	for _, k := range keys {
		h.Write([]byte(k))
		h.Write([]byte{0})
		h.Write([]byte(m[k]))
		h.Write([]byte{0})
	}
	return h.Sum64()
}

// reported is the ParameterStatus set a client sees at login: the
// server's, with the client's own startup choices in place of defaults.
func (p *paramSet) reported(server map[string]string) map[string]string {
	out := make(map[string]string, len(server))
	lower := make(map[string]string, len(server))
	for k, v := range server {
		out[k] = v
		lower[strings.ToLower(k)] = k
	}
	for k, v := range p.startup {
		if name, ok := lower[k]; ok {
			out[name] = v
		}
	}
	return out
}

var emptyParamsHash = hashParams(nil)

// syncSQL returns the statements that bring a server connection in state
// st to p, and records that they will have run; none when st matches.
func (p *paramSet) syncSQL(st *serverState) []string {
	if st.paramsHash == p.hash {
		return nil
	}
	var stmts []string
	for k, sql := range p.apply {
		if cur, ok := st.params[k]; !ok || cur != sql {
			stmts = append(stmts, sql)
		}
	}
	for k := range st.params {
		if _, ok := p.apply[k]; !ok {
			stmts = append(stmts, "RESET "+quoteIdent(k))
		}
	}
	sort.Strings(stmts)
	p.installed(st)
	return stmts
}

// installed records that the server connection in state st holds p.
func (p *paramSet) installed(st *serverState) {
	st.params = maps.Clone(p.apply)
	st.paramsHash = p.hash
}

func quoteLiteral(s string) string { return "'" + strings.ReplaceAll(s, "'", "''") + "'" }

func quoteIdent(s string) string { return `"` + strings.ReplaceAll(s, `"`, `""`) + `"` }

// appendQuery appends a simple Query message.
func appendQuery(dst []byte, sql string) []byte {
	return wire.Append(dst, &pgproto3.Query{String: sql})
}

// writeQuery sends one simple query on c and flushes.
func writeQuery(c *pool.Conn, sql string) error {
	if _, err := c.W.Write(appendQuery(nil, sql)); err != nil {
		return err
	}
	return c.W.Flush()
}
