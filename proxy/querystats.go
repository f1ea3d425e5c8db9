package proxy

import (
	"bytes"
	"cmp"
	"slices"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/ai-ninja/pgninja/config"
	"github.com/ai-ninja/pgninja/internal/wire"
	"github.com/ai-ninja/pgninja/parser"
	"github.com/ai-ninja/pgninja/pool"
)

// Per-statement statistics (query_stats): for each database, user and
// statement shape, how often it ran through the proxy, how long it took
// from the request's sending to its ReadyForQuery, how often it failed
// and how often it was slow. A request is keyed by the statement the
// router would decide by (its strongest, see requestClass); a request
// sent in parts counts under the first part that executes something.

// maxQueryText caps the statement text kept per entry.
const maxQueryText = 4 << 10

type queryKey struct {
	db, user string
	fp       uint64
}

type queryEntry struct {
	query                     string
	calls, rows, errors, slow uint64
	totalUS, minUS, maxUS     uint64
}

type queryStats struct {
	mu sync.Mutex
	m  map[queryKey]*queryEntry
}

func newQueryStats() *queryStats { return &queryStats{m: map[queryKey]*queryEntry{}} }

// record counts one call of cls, which returned or affected rows; limit
// bounds the entries kept.
func (q *queryStats) record(db, user string, cls *parser.Classification, took time.Duration, rows uint64, failed, slow bool, limit int) {
	us := uint64(took.Microseconds())
	k := queryKey{db: db, user: user, fp: cls.Fingerprint}
	q.mu.Lock()
	defer q.mu.Unlock()
	e := q.m[k]
	if e == nil {
		if len(q.m) >= limit {
			q.evict(limit)
		}
		e = &queryEntry{query: capText(cls.Normalized), minUS: us}
		q.m[k] = e
	}
	e.calls++
	e.rows += rows
	e.totalUS += us
	e.minUS, e.maxUS = min(e.minUS, us), max(e.maxUS, us)
	if failed {
		e.errors++
	}
	if slow {
		e.slow++
	}
}

// evict drops the least called entries, down to nine tenths of limit,
// so that a full table makes room once per many new statements rather
// than on each. q.mu is held.
func (q *queryStats) evict(limit int) {
	type kc struct {
		k     queryKey
		calls uint64
	}
	all := make([]kc, 0, len(q.m))
	for k, e := range q.m {
		all = append(all, kc{k, e.calls})
	}
	slices.SortFunc(all, func(a, b kc) int { return cmp.Compare(a.calls, b.calls) })
	drop := len(all) - limit + limit/10 + 1
	for _, e := range all[:min(drop, len(all))] {
		delete(q.m, e.k)
	}
}

// queryRow is one entry as SHOW QUERIES lists it.
type queryRow struct {
	key queryKey
	queryEntry
}

// reset drops every entry, as pg_stat_statements_reset() does, so that
// an analysis can start from a known moment. It reports how many went.
func (q *queryStats) reset() int {
	q.mu.Lock()
	defer q.mu.Unlock()
	n := len(q.m)
	clear(q.m)
	return n
}

// Reset empties what the proxy counts under what, for the admin HTTP
// port's POST /reset/{what}, as Show serves its SHOW: queries (any case)
// is query_stats, the console's RESET QUERIES. It reports how many
// entries went; ok is false for anything else.
func (srv *Server) Reset(what string) (entries int, ok bool) {
	if !strings.EqualFold(what, "queries") {
		return 0, false
	}
	return srv.resetQueries(), true
}

func (srv *Server) resetQueries() int {
	n := srv.queries.reset()
	srv.log.Info("query_stats reset", "entries", n)
	return n
}

// rows are the entries, the most total time first.
func (q *queryStats) rows() []queryRow {
	q.mu.Lock()
	out := make([]queryRow, 0, len(q.m))
	for k, e := range q.m {
		out = append(out, queryRow{k, *e})
	}
	q.mu.Unlock()
	slices.SortFunc(out, func(a, b queryRow) int {
		return cmp.Or(cmp.Compare(b.totalUS, a.totalUS), strings.Compare(a.query, b.query))
	})
	return out
}

// capText cuts s to maxQueryText bytes on a character boundary.
func capText(s string) string {
	if len(s) <= maxQueryText {
		return s
	}
	s = s[:maxQueryText]
	for len(s) > 0 && !utf8.ValidString(s) {
		s = s[:len(s)-1]
	}
	return s + "…"
}

// statsClass is what query_stats counts the collected request under: the
// routing classification when there is one, else the same made here. Nil
// when query_stats is off or the request runs nothing: a lone Sync, or
// a Parse and Describe that prepare a statement (as pg_stat_statements,
// which counts executions).
func (s *Session) statsClass(cls *parser.Classification) *parser.Classification {
	if !s.srv.settings.Load().cfg.QueryStats.Enabled || s.console != config.ConsoleNone {
		return nil
	}
	var names stmtClasses
	if s.l.mode == config.PoolSession {
		if s.statsStmts == nil {
			s.statsStmts = stmtClasses{}
		}
		names = s.statsStmts
	}
	if !runsSomething(s.req) {
		if names != nil {
			s.classifyRequest(names) // for the statements it prepares
		}
		return nil
	}
	if cls == nil {
		cls = s.classifyRequest(names)
	}
	if cls == primaryOnly {
		return nil
	}
	return cls
}

// noteQuery counts a request's call in query_stats; s.mu is held.
func (s *Session) noteQuery(cls *parser.Classification, took time.Duration, failed bool, rows uint64) {
	qs := s.srv.settings.Load().cfg.QueryStats
	slow := took > qs.SlowThreshold
	s.srv.queries.record(s.l.dbName, s.l.user.Name, cls, took, rows, failed, slow, qs.MaxEntries)
	if slow {
		s.srv.metrics.slowQueries.WithLabelValues(s.l.dbName).Inc()
	}
}

// runsSomething: the request has a Query, Execute or FunctionCall.
func runsSomething(req []byte) bool {
	for typ := range wire.Bodies(req) {
		if typ == 'Q' || typ == 'E' || typ == 'F' {
			return true
		}
	}
	return false
}

// commandRows peeks at a CommandComplete's tag ("SELECT 5", "INSERT 0 5")
// for the rows it counts, without consuming it; 0 for a tag without.
func commandRows(c *pool.Conn, n int) uint64 {
	b, err := c.R.Peek(min(n, 64))
	if err != nil {
		return 0
	}
	return tagRows(b)
}

// tagRows is commandRows for a tag already in hand.
func tagRows(b []byte) uint64 {
	if i := bytes.IndexByte(b, 0); i >= 0 {
		b = b[:i]
	}
	// Parsed by hand: this runs for every CommandComplete, and a string
	// made of the bytes for strconv would be an allocation each time.
	digits := b[bytes.LastIndexByte(b, ' ')+1:]
	if len(digits) == 0 || len(digits) > 19 {
		return 0
	}
	var rows uint64
	for _, d := range digits {
		if d < '0' || d > '9' {
			return 0
		}
		rows = rows*10 + uint64(d-'0')
	}
	return rows
}
