package proxy

import (
	"hash/fnv"
	"sort"
	"strings"

	"github.com/ai-ninja/pgninja/internal/wire"
	"github.com/ai-ninja/pgninja/pool"
	"github.com/jackc/pgx/v5/pgproto3"
)

// paramSet is a set of session settings (lower-cased name → value) with a
// hash, so checking whether a server connection already matches a client
// costs one comparison.
type paramSet struct {
	vals map[string]string
	hash uint64
}

func newParamSet(m map[string]string) *paramSet {
	p := &paramSet{vals: make(map[string]string, len(m))}
	for k, v := range m {
		p.vals[strings.ToLower(k)] = v
	}
	p.hash = hashParams(p.vals)
	return p
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
// server's, with the client's own choices in place of the defaults.
func (p *paramSet) reported(server map[string]string) map[string]string {
	out := make(map[string]string, len(server))
	lower := make(map[string]string, len(server))
	for k, v := range server {
		out[k] = v
		lower[strings.ToLower(k)] = k
	}
	for k, v := range p.vals {
		if name, ok := lower[k]; ok {
			out[name] = v
		}
	}
	return out
}

// serverParams is what a server connection has been set to beyond its
// defaults. It lives in pool.Conn.State; a reset clears it.
type serverParams struct {
	vals map[string]string
	hash uint64
}

var emptyParamsHash = hashParams(nil)

// syncTo writes the statements that bring c to p, unflushed, ahead of the
// client's request, and reports whether it wrote any (the caller then owes
// the relay one injected ReadyForQuery). set_config is used rather than
// SET because it takes a value exactly as a startup packet does (a list
// such as search_path stays a list).
func (p *paramSet) syncTo(c *pool.Conn) bool {
	sp, _ := c.State.(*serverParams)
	if sp == nil {
		sp = &serverParams{vals: map[string]string{}, hash: emptyParamsHash}
		c.State = sp
	}
	if sp.hash == p.hash {
		return false
	}
	var sets, resets []string
	for k, v := range p.vals {
		if cur, ok := sp.vals[k]; !ok || cur != v {
			sets = append(sets, "set_config("+quoteLiteral(k)+", "+quoteLiteral(v)+", false)")
		}
	}
	for k := range sp.vals {
		if _, ok := p.vals[k]; !ok {
			resets = append(resets, "RESET "+quoteIdent(k))
		}
	}
	sort.Strings(sets)
	sort.Strings(resets)
	var sql strings.Builder
	if len(sets) > 0 {
		sql.WriteString("SELECT " + strings.Join(sets, ", ") + ";")
	}
	for _, r := range resets {
		sql.WriteString(r + ";")
	}
	sp.vals = make(map[string]string, len(p.vals))
	for k, v := range p.vals {
		sp.vals[k] = v
	}
	sp.hash = p.hash
	_, _ = c.W.Write(wire.Append(nil, &pgproto3.Query{String: sql.String()}))
	return true
}

func quoteLiteral(s string) string { return "'" + strings.ReplaceAll(s, "'", "''") + "'" }

func quoteIdent(s string) string { return `"` + strings.ReplaceAll(s, `"`, `""`) + `"` }

// writeQuery sends one simple query on c and flushes.
func writeQuery(c *pool.Conn, sql string) error {
	if _, err := c.W.Write(wire.Append(nil, &pgproto3.Query{String: sql})); err != nil {
		return err
	}
	return c.W.Flush()
}
