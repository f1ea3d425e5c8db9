package proxy

import (
	"encoding/binary"
	"errors"
	"math"
	"time"
	"unsafe"

	"github.com/ai-ninja/pgninja/config"
	"github.com/ai-ninja/pgninja/internal/pgerr"
	"github.com/ai-ninja/pgninja/internal/wire"
	"github.com/ai-ninja/pgninja/parser"
	"github.com/ai-ninja/pgninja/pool"
	"github.com/ai-ninja/pgninja/router"
)

// lsnQuery reads the primary's WAL position right after a request that may
// have committed writes; it rides in the same write as the request, so it
// costs no extra round trip.
//
// The insert position is at or past the end of every record written so
// far, commits included, flushed or not (the flush position is not, under
// synchronous_commit = off). But when the last record ended on a WAL page
// boundary it points past the next page's header, where a replica that has
// replayed everything reports the boundary itself: on a quiet primary the
// client's reads would stay off the replicas until someone else wrote. So
// a position just past a page header (24 bytes, 40 at a segment start,
// where no record can end) is taken back to the boundary.
//
// It runs under the client's search_path, so every function, operator
// and type is named in pg_catalog: a client's own current_setting or "-"
// earlier in its path must not decide where its reads go. (OPERATOR()
// forms all bind alike, left to right, which is the order meant here.)
const lsnQuery = "SELECT CASE " +
	"WHEN o OPERATOR(pg_catalog.%) pg_catalog.pg_size_bytes(pg_catalog.current_setting('wal_segment_size')) OPERATOR(pg_catalog.=) 40 " +
	"THEN l OPERATOR(pg_catalog.-) 40 " +
	"WHEN o OPERATOR(pg_catalog.%) pg_catalog.current_setting('wal_block_size')::pg_catalog.int4 OPERATOR(pg_catalog.=) 24 " +
	"THEN l OPERATOR(pg_catalog.-) 24 ELSE l END AS pgninja_commit_lsn " +
	"FROM (SELECT l, l OPERATOR(pg_catalog.-) '0/0'::pg_catalog.pg_lsn AS o FROM pg_catalog.pg_current_wal_insert_lsn() l) s"

// routed reports whether this session's requests are routed. Session mode
// keeps one server connection for the whole session, so it stays on the
// primary.
func (s *Session) routed() bool {
	return s.srv.router != nil && s.l.mode != config.PoolSession
}

// requestClass classifies the collected request for routing: the
// strongest of its statements decides, since the whole request runs on one
// server.
func (s *Session) requestClass() *parser.Classification {
	return s.classifyRequest(nil)
}

// stmtClasses remembers how each statement a session-mode client prepared
// classified, for query_stats: in session mode the proxy keeps none of the
// client's statements (transaction mode does, see stmts.go). Bounded, as
// the client's own statements on its server are not.
type stmtClasses map[string]*parser.Classification

const maxStmtClasses = 1000

// classifyRequest is requestClass; with names, the statements a Bind
// names are looked up there, and the request's Parse and Close messages
// keep it up to date.
func (s *Session) classifyRequest(names stmtClasses) *parser.Classification {
	var best *parser.Classification
	consider := func(c *parser.Classification) {
		if c == nil {
			return
		}
		// A COPY FROM STDIN anywhere in the request decides when its WAL
		// position may be read (see readLSNAfter); it is a write, so the
		// route is the same.
		if best == nil || (c.CopyFromClient && !best.CopyFromClient) ||
			(best.Kind == parser.Read && !best.VolatileFunc && !best.Locking) {
			best = c
		}
	}
	for typ, body := range wire.Bodies(s.req) {
		switch typ {
		case 'Q':
			consider(s.classifyQuery(body))
		case 'P':
			if cs := s.unnamedAgain(body); cs != nil && names == nil {
				consider(s.asRun(s.classOf(cs)))
			} else if name, query, _, ok := parseMsg(body); ok {
				c := s.classifier.Classify(query)
				if names == nil {
					consider(s.asRun(c))
				} else {
					consider(c)
					if len(names) >= maxStmtClasses {
						clear(names)
					}
					names[name] = c
				}
			}
		case 'B':
			if _, rest, ok := nameField(body); ok {
				if name, _, ok := nameField(rest); ok {
					consider(s.boundClass(name, names))
				}
			}
		case 'C':
			if names != nil && len(body) > 0 && body[0] == 'S' {
				if name, _, ok := nameField(body[1:]); ok {
					delete(names, name)
				}
			}
		}
	}
	if best == nil {
		// Nothing to classify (a lone Sync, say): any server will do, and
		// the primary always can.
		return primaryOnly
	}
	return best
}

// boundClass classifies the statement a Bind names.
func (s *Session) boundClass(name string, names stmtClasses) *parser.Classification {
	if names != nil {
		return names[name]
	}
	cs := s.unnamed
	if name != "" {
		cs = s.stmt(name)
	}
	if cs == nil {
		return nil
	}
	return s.asRun(s.classOf(cs))
}

// classifyQuery classifies a Query message body (NUL-terminated SQL). The
// comparison with the memo does not copy the body.
func (s *Session) classifyQuery(body []byte) *parser.Classification {
	sql := body
	if n := len(sql); n > 0 && sql[n-1] == 0 {
		sql = sql[:n-1]
	}
	if s.memoClass != nil && string(sql) == s.memoQuery {
		return s.memoClass
	}
	// The memo reads the request in place, as the classifier does: both
	// end with the request (see resetRequest), and nothing rewrites
	// s.req before then.
	s.memoQuery = unsafe.String(unsafe.SliceData(sql), len(sql))
	s.memoClass = s.asRun(s.classifier.ClassifyShaped(sql, &s.shapes))
	return s.memoClass
}

// primaryOnly classifies requests with no statement of their own.
var primaryOnly = &parser.Classification{Kind: parser.Unknown}

// routeError turns a routing refusal into what the client sees.
func routeError(err error) error {
	if errors.Is(err, router.ErrNoPrimary) {
		return pgerr.New(pgerr.CannotConnectNow, "pgninja: no healthy primary available").
			WithHint("Writes are never sent to a server in recovery; retry once a primary is back.")
	}
	var he *parser.HintError
	if errors.As(err, &he) {
		return pgerr.New(pgerr.InvalidParameterValue, "%s", he.Error())
	}
	return pgerr.Wrap(err, pgerr.SeverityError, pgerr.InternalError, "pgninja: routing failed")
}

// poolFor returns the pool of the named backend for this client. The
// backend is looked up in the running configuration, not the one the
// client logged in under: a reload may have added it since, or moved it
// (and the pool must not be pointed back at its old address).
func (s *Session) poolFor(name string) (*pool.Pool, bool) {
	if name == "" || name == s.primaryName {
		return s.pool, true
	}
	if p, ok := s.pools[name]; ok {
		return p, true
	}
	st := s.srv.settings.Load()
	for _, b := range st.cfg.Backends {
		if b.Name == name {
			t := st.target(b, s.l)
			p := s.srv.poolOf(st, pool.Key{Backend: b.Name, Database: t.Database, User: t.User}, t, s.l)
			if s.pools == nil {
				s.pools = map[string]*pool.Pool{}
			}
			s.pools[name] = p
			return p, true
		}
	}
	return nil, false
}

// needsLSN says whether the primary's WAL position must be read after this
// request: it may end a transaction that wrote, or write outside one.
func (s *Session) needsLSN(c *parser.Classification, d router.Decision) bool {
	if s.srv.consistency == router.Eventual || d.Target != router.Primary {
		return false
	}
	if s.txStatus == 'I' {
		return c.MayWrite() && !onlyBegins(c)
	}
	for _, k := range c.StatementKinds {
		if k == parser.TxnCommit || k == parser.TxnRollback {
			return s.txStatus == 'T'
		}
	}
	return false
}

func onlyBegins(c *parser.Classification) bool {
	for _, k := range c.StatementKinds {
		if k != parser.TxnBegin {
			return false
		}
	}
	return len(c.StatementKinds) > 0
}

// executed folds a finished request into the routing state. A commit
// whose position was not read (the request was not expected to commit)
// sends this client's reads to the primary until its next commit is
// known: never a stale read. s.mu is held.
func (s *Session) executed(e *expect, status byte, failed bool) {
	commit := s.rs.Executed(e.class, e.decision, router.Outcome{TxStatus: status, Failed: failed, Pins: e.pins})
	if !commit.Needed {
		return
	}
	if e.lsnFollows {
		s.commitTables, s.commitSchema = commit.Tables, commit.Schema
		s.commitWaiting = true
		return
	}
	s.positionUnknown(commit.Tables, commit.Schema)
}

// positionUnknown settles a commit whose WAL position was not read: this
// client's reads stay on the primary until its next known commit, and so
// do other clients' reads that would have waited for it, until the health
// checker next reads the primary's position. s.mu is held.
func (s *Session) positionUnknown(tables []string, schema bool) {
	s.rs.Committed(router.LSN(math.MaxUint64))
	if s.srv.consistency != router.Eventual {
		s.srv.router.Tracker().NoteUnknown(s.rs.ClientKey, tables, schema, time.Now())
	}
}

// readLSNAfter sends the WAL-position read of a request that could not
// have it sent behind it (COPY FROM STDIN), now that its answer is
// complete and its commit is waiting for a position, and before the
// client has its ReadyForQuery. A request the client pipelined meanwhile
// may already be queued but not yet written; the read could then pass it
// on the wire, so the commit is instead taken as of an unknown position
// (this client's reads stay on the primary until its next known commit).
// s.mu is held, and stays held while the read is written: a request the
// session goroutine queues next is written after it.
func (s *Session) readLSNAfter(c *pool.Conn, e *expect) {
	if !e.lsnAfter || !s.commitWaiting {
		return
	}
	if len(s.pending) > 0 {
		s.commitWaiting = false
		s.positionUnknown(s.commitTables, s.commitSchema)
		return
	}
	s.pending = append(s.pending, expect{injected: true, captureLSN: true})
	s.writeServer(c, appendQuery(nil, lsnQuery))
}

// committedAt records the WAL position read after a commit. s.mu is held.
func (s *Session) committedAt(lsn router.LSN) {
	if !s.commitWaiting {
		return
	}
	s.commitWaiting = false
	s.rs.Committed(lsn)
	s.srv.router.Tracker().NoteCommit(s.rs.ClientKey, s.commitTables, lsn)
	if s.commitSchema {
		s.srv.router.Tracker().NoteSchema(lsn)
	}
}

// commitPositionLost settles a commit whose WAL-position read failed, as
// one whose position was never read. s.mu is held.
func (s *Session) commitPositionLost() {
	if !s.commitWaiting {
		return
	}
	s.commitWaiting = false
	s.positionUnknown(s.commitTables, s.commitSchema)
}

// parseLSNRow reads the single text column of lsnQuery's
// DataRow.
func parseLSNRow(body []byte) (router.LSN, bool) {
	if len(body) < 6 || binary.BigEndian.Uint16(body) != 1 {
		return 0, false
	}
	n := int(int32(binary.BigEndian.Uint32(body[2:6])))
	if n <= 0 || 6+n > len(body) {
		return 0, false
	}
	lsn, err := router.ParseLSN(string(body[6 : 6+n]))
	return lsn, err == nil
}
