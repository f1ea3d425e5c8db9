package proxy

import (
	"bufio"
	"maps"
	"slices"
	"sort"
	"strings"
	"sync/atomic"

	"github.com/ai-ninja/pgninja/internal/wire"
	"github.com/ai-ninja/pgninja/parser"
	"github.com/ai-ninja/pgninja/pool"
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

// scalarSettings take their value whole, so SET means for them exactly
// what set_config does. SET is the cheaper for PostgreSQL (a utility
// statement: no plan, no row to send), and connect-per-transaction
// clients have at least application_name applied on every login.
var scalarSettings = map[string]bool{
	"application_name": true, "client_encoding": true, "datestyle": true, "timezone": true,
	"intervalstyle": true, "extra_float_digits": true, "statement_timeout": true, "lock_timeout": true,
	"idle_in_transaction_session_timeout": true, "bytea_output": true, "standard_conforming_strings": true,
}

// startupSQL applies a value as a startup packet gives it. Other settings
// than scalarSettings use set_config, which takes the value exactly so: a
// list such as search_path stays a list, where SET would quote 'a, b' into
// one schema name.
func startupSQL(name, value string) string {
	if scalarSettings[name] {
		return "SET " + name + " = " + quoteLiteral(value)
	}
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
	p.parseHash.Store(hashParamsOf(p.apply, parseSettings))
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

func hashParams(m map[string]string) uint64 { return hashParamsOf(m, nil) }

// hashParamsOf hashes the settings of m that keep names (all when keep is
// nil), in name order, with FNV-1a over name NUL value NUL. It allocates
// nothing for the handful of settings a client usually has: it runs at
// every login.
func hashParamsOf(m map[string]string, keep map[string]bool) uint64 {
	var small [16]string
	keys := small[:0]
	for k := range m {
		if keep == nil || keep[k] {
			keys = append(keys, k)
		}
	}
	slices.Sort(keys)
	const prime = 1099511628211
	h := uint64(14695981039346656037)
	add := func(s string) {
		for i := 0; i < len(s); i++ {
			h = (h ^ uint64(s[i])) * prime
		}
		h *= prime // the NUL after it: h ^ 0 is h
	}
	for _, k := range keys {
		add(k)
		add(m[k])
	}
	return h
}

// appendReported appends the ParameterStatus messages a client sees at
// login: the server's, with the client's own startup choices in place of
// defaults (names match without regard to case, as the server's do).
func (p *paramSet) appendReported(dst []byte, server map[string]string) []byte {
	// A client's startup settings are few: copied out of their map once,
	// they are scanned for each of the dozen settings the server reports;
	// a map iteration per setting cost some 4,400 of a login's 85,000
	// instructions. Names of other lengths cannot match: PostgreSQL folds
	// the ASCII letters of setting names only.
	var small [8]struct{ name, value string }
	mine := small[:0]
	for name, value := range p.startup {
		mine = append(mine, struct{ name, value string }{name, value})
	}
	for k, v := range server {
		for _, m := range mine {
			if len(m.name) == len(k) && strings.EqualFold(m.name, k) {
				v = m.value
				break
			}
		}
		dst = appendParameterStatus(dst, k, v)
	}
	return dst
}

// appendParameterStatus encodes a ParameterStatus message without the
// allocation a pgproto3 message costs; a login sends a dozen.
func appendParameterStatus(dst []byte, name, value string) []byte {
	dst = wire.AppendHeader(dst, 'S', len(name)+len(value)+2)
	dst = append(dst, name...)
	dst = append(dst, 0)
	dst = append(dst, value...)
	return append(dst, 0)
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

// quoteLiteral quotes s as a string constant. One with a backslash is
// written in the escape form, which means the same whatever the
// connection's standard_conforming_strings (a client may have turned it
// off, and its settings are applied on that connection).
func quoteLiteral(s string) string {
	q := "'" + strings.ReplaceAll(s, "'", "''") + "'"
	if strings.Contains(s, `\`) {
		q = "E" + strings.ReplaceAll(q, `\`, `\\`)
	}
	return q
}

func quoteIdent(s string) string { return `"` + strings.ReplaceAll(s, `"`, `""`) + `"` }

// appendQuery appends a simple Query message.
func appendQuery(dst []byte, sql string) []byte {
	dst = wire.AppendHeader(dst, 'Q', len(sql)+1)
	dst = append(dst, sql...)
	return append(dst, 0)
}

// bufferQuery writes one simple query into w, without flushing.
func bufferQuery(w *bufio.Writer, sql string) error {
	var hdr [5]byte
	if _, err := w.Write(wire.AppendHeader(hdr[:0], 'Q', len(sql)+1)); err != nil {
		return err
	}
	_, _ = w.WriteString(sql)
	return w.WriteByte(0)
}

// writeQuery sends one simple query on c and flushes.
func writeQuery(c *pool.Conn, sql string) error {
	if err := bufferQuery(c.W, sql); err != nil {
		return err
	}
	return c.W.Flush()
}
