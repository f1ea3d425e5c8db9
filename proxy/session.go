package proxy

import (
	"context"
	"errors"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/ai-ninja/pgninja/config"
	"github.com/ai-ninja/pgninja/internal/pgerr"
	"github.com/ai-ninja/pgninja/internal/rawconn"
	"github.com/ai-ninja/pgninja/parser"
	"github.com/ai-ninja/pgninja/pool"
	"github.com/ai-ninja/pgninja/router"
	"github.com/jackc/pgx/v5/pgproto3"
)

// phase is where the client side of a session stands.
type phase int

const (
	// phaseStartup: the client has not finished logging in.
	phaseStartup phase = iota
	// phaseReady: collecting the client's next request.
	phaseReady
	// phaseDiscard: an error ended an extended-protocol batch before its
	// Sync; messages are dropped until Sync, as the server would.
	phaseDiscard
)

// expect is one ReadyForQuery the server owes. Injected ones answer the
// proxy's own statements (parameter sync, replays, wake-ups) and are not
// forwarded. A client request may carry a plan (when the proxy rewrote
// it) and the session settings it changes if it commits.
type expect struct {
	injected bool
	// begun: an injected BEGIN the proxy held back; standIn: the
	// statement behind it that fails on purpose (see deferbegin.go).
	begun, standIn bool
	plan           *plan
	sets           []parser.SetParam
	rollback       bool
	ddl            bool
	// Routing: what the request was and where it went, for the router's
	// bookkeeping when it completes; lsnFollows: an injected WAL-position
	// read comes right after it (lsnAfter: only once its answer is
	// complete, see readLSNAfter); captureLSN: this is that read.
	routed bool
	class  *parser.Classification
	// query: what query_stats counts the request under (nil: off).
	query      *parser.Classification
	decision   router.Decision
	lsnFollows bool
	lsnAfter   bool
	captureLSN bool
	// reset: this is the reset query sent after the client left.
	reset bool
	// vet: this is a Describe of the client's statement run to see
	// whether its result changed shape (see vetStatementsInUse); vetDone
	// is closed at its ReadyForQuery.
	vet     *clientStmt
	vetDone chan struct{}
	// pins: session state the request makes, if it succeeds (see pin);
	// releases: pins whose state it ends, if it succeeds outside a
	// transaction (see unpin).
	pins, releases parser.Pins
	// held and closed: cursors the request opens WITH HOLD and closes
	// by name (see noteCursors).
	held, closed []string
	// extended: the request ended with Sync (not Query or FunctionCall).
	extended bool
	// open: the request is being sent in parts (ended by Flush, or by a
	// pause of a session-mode client) and its last part is still to
	// come; the relay reads the settled fields again at its
	// ReadyForQuery.
	open bool
	// sent is when the client's request (its first part) went out.
	sent time.Time
}

// streamThreshold is how large an unfinished request may grow before it is
// sent on ahead of its Sync (a huge Bind, say) rather than held.
const streamThreshold = 1 << 20

// Session is one client connection after startup.
type Session struct {
	srv *Server
	c   *clientConn
	st  *settings
	l   *login
	// pool serves this client's (database, user) on the primary; pools
	// holds the other backends' pools as routing first needs them.
	pool        *pool.Pool
	primaryName string
	pools       map[string]*pool.Pool

	// classifier knows this client's database's functions.
	classifier *parser.Classifier
	// epoch is the database's schema epoch (see schemaEpochs).
	epoch *atomic.Uint64
	// statsStmts: a session-mode client's statements, for query_stats.
	statsStmts stmtClasses
	// memoQuery and memoClass remember the simple query classified for
	// the current request, so routing and the batch builder share one
	// lookup; the request's end clears them.
	memoQuery string
	memoClass *parser.Classification
	// shapes are the statement shapes this client sent last, which its
	// next simple queries most likely repeat with new literals.
	shapes parser.Shapes
	// parkToken names the session in the parking lot while it is parked
	// there, 0 otherwise; the lot's lock guards it.
	parkToken uint64

	keyPID    uint32
	keySecret []byte
	// role is the role the client's server connections log in as,
	// superuser whether that is a superuser, and serverMajor the server's
	// major version: who it may signal and how a refusal reads (see
	// signal.go). Written under mu at login.
	role        string
	superuser   bool
	serverMajor int

	// params are the session settings the client asked for; every leased
	// server connection is brought to them before the client's request.
	params *paramSet

	phase phase
	// countedClient: this session holds a max_client_conn slot.
	countedClient bool
	req           []byte
	out           []byte

	// Statements the client prepared, by its names, for replay on
	// whichever server connection it is given (transaction mode).
	stmts    map[string]*clientStmt
	sqlStmts map[string]*sqlStmt
	// sqlOpaque: a string of several statements prepared or deallocated
	// SQL statements, so only the server knows which it holds; the client
	// is pinned to it, and its SQL statements are left to it.
	sqlOpaque bool
	unnamed   *clientStmt
	// seqStamp marks where the client's sequence values are (see
	// sequences.go).
	seqStamp uint64
	seqConn  *pool.Conn
	// lastReq is the type of the request's final message.
	lastReq byte

	// serverWrite is held while the session goroutine writes to the
	// leased connection; the relay takes it before giving the connection
	// back, so a write still returning from its Flush never overlaps the
	// next owner's.
	serverWrite sync.Mutex

	// mu guards the lease and everything the relay shares with the
	// session goroutine.
	mu        sync.Mutex
	lease     *pool.Conn
	pending   []expect
	openBatch bool
	// copySyncOwed: a COPY FROM STDIN started by an extended-protocol
	// request; the server ignores that request's Sync and answers the
	// client's next one instead (which libpq sends after CopyDone).
	copySyncOwed bool
	// copyingIn: the server waits for the client's COPY data, from its
	// CopyInResponse to the client's CopyDone or CopyFail, at copyEnded;
	// query_timeout times the server from there (runningSince).
	copyingIn bool
	copyEnded time.Time
	gone      bool
	draining  bool
	// drainErr is what a draining client is told when it is ended at its
	// safe point (errShutdown when nil).
	drainErr error
	txStatus byte
	// timedOut: query_timeout closed the server connection
	// (querytimeout.go); the relay that sees it lost reports this, not a
	// lost server.
	timedOut error
	// begin holds a BEGIN the proxy answered itself, and begins counts its
	// queries, for the client's next request (see deferbegin.go).
	begin  []byte
	begins int
	// pinned lists the session features that keep this client on its
	// server connection until it leaves.
	pinned parser.Pins
	// holdCursors are the cursors it holds open WITH HOLD, by name.
	holdCursors map[string]bool
	// roleSet, authSet: it set its session's role, or its session
	// authorization (see noteRole).
	roleSet, authSet bool
	// txnSets are SETs run inside the open transaction: they count only if
	// it commits.
	txnSets []parser.SetParam
	// observed are the settings the server reported changed while
	// answering the request (see observeParam).
	observed []parser.SetParam

	// Routing state: the router's view of this client, where the current
	// lease went, and a commit waiting for its WAL position.
	rs            router.SessionState
	leaseDecision router.Decision
	leaseDone     chan struct{} // see leaseEnded
	commitTables  []string
	commitSchema  bool
	commitWaiting bool
	// rerouteOK: the request being sent may be run again on the primary
	// if its server connection dies before answering (see reroute.go);
	// rerouting: it is being run again, so it must not go to a replica;
	// reruns counts the times.
	rerouteOK bool
	rerouting bool
	reruns    int
	// parsedNow are the statement names the request being built gave
	// the client, undone if the request is built again for another server.
	parsedNow []string
	// batch is the request being rewritten for its server connection
	// (see build), kept to save an allocation per request; sparePlan is a
	// plan no expectation took or one whose answer is complete, for the
	// next request; s.mu guards it.
	batch     batch
	sparePlan *plan
	// shapeBuf is the relay's, for the result shapes of the statements
	// the client describes (one relay runs at a time).
	shapeBuf []byte
	// waiting: the session waits for a server connection under waitCtx,
	// which a CancelRequest stops (see waitcancel.go).
	waiting  bool
	waitCtx  context.Context
	waitStop context.CancelCauseFunc
	// leaseCtx is waitCtx carrying waitAbort, which a CancelRequest fires
	// with waitStop: a queued acquire under it blocks on its grant alone.
	leaseCtx  context.Context
	waitAbort pool.Abort
	// waitSince is when the current wait began; lastRequest when the
	// client's last request went to a server (SHOW CLIENTS).
	waitSince, lastRequest time.Time

	// connected is when the client connected; console is what it may
	// do on the admin console, when it logged in to that (console.go).
	// peerPID is a unix socket client's process, 0 over TCP.
	connected time.Time
	peerPID   int32
	console   config.ConsoleAccess
	// consoleThen runs once a console command's answer is out (SHUTDOWN).
	consoleThen func()
	// heldByPause: its wait is for the RESUME of a PAUSE (pause.go).
	heldByPause bool
	// idleArmed: the client read deadline of idle_transaction_timeout or
	// client_idle_timeout is set (relay.go).
	idleArmed atomic.Bool

	// stats are its counts for SHOW STATS; xactStart is when its open
	// transaction's first request went out (stats.go).
	stats     clientStats
	xactStart time.Time
}

func newSession(srv *Server, c *clientConn, st *settings) *Session {
	// The maps are made when first written: most clients of a
	// connect-per-transaction load never prepare or route.
	return &Session{srv: srv, c: c, st: st, txStatus: 'I', connected: time.Now(), peerPID: rawconn.PeerPID(c.Conn)}
}

// run logs the client in and serves it until it leaves, or until it is
// parked (see parkinglot.go): then resume goes on with it later, and
// finishes it.
func (s *Session) run(pkt *startupPacket) (parked bool) {
	if err := s.login(pkt); err != nil {
		result := loginResult(err)
		s.srv.metrics.logins.WithLabelValues(result).Inc()
		if pgerr.SQLState(err) != "" {
			_ = s.c.sendError(err, 0)
		}
		// A refused login is an operator's business, as PostgreSQL and
		// PgBouncer log it; a client gone mid-login is not.
		level := slog.LevelDebug
		if result != "error" {
			level = slog.LevelWarn
		}
		s.srv.log.Log(context.Background(), level, "login failed", "user", pkt.params["user"],
			"database", pkt.params["database"], "remote", s.c.Conn.RemoteAddr().String(), "err", err)
		if s.countedClient {
			s.srv.clients.Add(-1)
		}
		return false
	}
	s.srv.metrics.logins.WithLabelValues("ok").Inc()
	s.srv.metrics.clients.Inc()
	if s.srv.settings.Load().cfg.LogConnections {
		s.srv.log.Info("login", "user", s.l.user.Name, "database", s.l.dbName, "remote", s.c.Conn.RemoteAddr().String(),
			"application_name", s.l.appName, "pool_mode", s.l.mode)
	}
	return s.resume()
}

// resume serves the client from where its session stopped: after login,
// or in a parked wait for its next request. It reports whether the
// session was parked again; otherwise the client is done with.
func (s *Session) resume() (parked bool) {
	if s.c.r == nil {
		s.c.unparkReader()
	}
	serve := s.serve
	if s.console != config.ConsoleNone {
		serve = s.serveConsole
	}
	err := serve()
	if err == errParked {
		return true
	}
	if err != nil {
		if pgerr.SQLState(err) != "" {
			_ = s.c.sendError(err, 0)
		}
		s.srv.log.Debug("session ended", "user", s.l.user.Name, "err", err)
	}
	if s.srv.settings.Load().cfg.LogDisconnections {
		s.srv.log.Info("logout", "user", s.l.user.Name, "database", s.l.dbName, "remote", s.c.Conn.RemoteAddr().String(),
			"age", time.Since(s.connected).Round(time.Millisecond).String(), "err", err)
	}
	s.leave()
	_ = s.c.Conn.Close()
	s.srv.keys.unregister(s)
	s.srv.metrics.clients.Dec()
	if s.countedClient {
		s.srv.clients.Add(-1)
	}
	return false
}

func loginResult(err error) string {
	switch {
	case errors.Is(err, errHBARefused):
		return "hba_refused"
	case errors.Is(err, errPeerFailed):
		return "peer_failed"
	case errors.Is(err, errCertFailed):
		return "cert_failed"
	}
	switch pgerr.SQLState(err) {
	case pgerr.InvalidPassword:
		return "bad_password"
	case pgerr.InvalidAuthorization:
		return "unknown_user"
	case pgerr.InvalidCatalogName:
		return "unknown_database"
	case pgerr.TooManyConnections:
		return "too_many_clients"
	}
	return "error"
}

// releasable says whether a lease may go back at a safe point that left
// the server in status.
func (s *Session) releasable(status byte) bool {
	return s.l.mode != config.PoolSession && status == 'I' && s.pinned == 0
}

// ensureLease returns the session's server connection, leasing one if it
// has none (fresh: the caller then starts its relay). The batch is marked
// open in the same critical section that finds the lease, so the relay
// cannot reach a safe point and hand the connection to another client
// while this request is on its way; send settles openBatch once the
// request is queued.
//
// With routing, a new lease goes where the router sends cls. A request
// that needs the primary while earlier pipelined reads still hold a
// replica waits for that lease to end rather than run on the replica.
func (s *Session) ensureLease(cls *parser.Classification) (c *pool.Conn, d router.Decision, fresh bool, err error) {
	var start time.Time // when a lease was first wanted
	syncTries := 0
	for {
		s.mu.Lock()
		c, d := s.lease, s.leaseDecision
		if c != nil && s.mustEndOpenPart(cls) {
			done := s.leaseEnded()
			s.endOpenPart()
			s.mu.Unlock()
			s.writeServer(c, syncMsg)
			<-done
			continue
		}
		if c != nil {
			if err := s.pinnedToReplica(cls); err != nil {
				s.mu.Unlock()
				return nil, d, false, err
			}
		}
		if c != nil && s.mustLeaveReplica(cls) {
			done := s.leaseEnded()
			s.mu.Unlock()
			<-done
			continue
		}
		if c != nil {
			s.openBatch = true
			s.mu.Unlock()
			return c, d, false, nil
		}
		if start.IsZero() {
			start = time.Now()
		}
		if s.rerouting {
			d = s.primaryInstead()
		} else if s.routed() {
			d = s.srv.router.Route(cls, &s.rs)
		}
		s.mu.Unlock()
		rideOut := false
		if errors.Is(d.Err, router.ErrNoPrimary) {
			if time.Since(start) < 2*s.st.cfg.Routing.HealthCheckInterval {
				// Health checks may be mid-way through finding the
				// primary (at start, or during a failover): give them a
				// moment.
				time.Sleep(50 * time.Millisecond)
				continue
			}
			if rd, ok := s.restartingPrimary(); ok {
				d, rideOut = rd, true
			}
		}
		if d.Err != nil {
			return nil, d, false, routeError(d.Err)
		}
		ctx := s.beginWait(start)
		if err := s.waitResumed(ctx); err != nil {
			return nil, d, false, s.waitFailed(err)
		}
		var stopWatch func() bool
		if rideOut {
			// Finding a primary ends this wait through the context alone,
			// so it carries no Abort.
			ctx, stopWatch = s.untilPrimaryFound(ctx)
		} else {
			ctx = s.leaseCtx
		}
		c, d, err := s.acquire(ctx, cls, d)
		if stopWatch != nil && stopWatch() && err != nil {
			// Routing found a primary while this waited for the
			// configured one: route afresh.
			if err := s.waitFailed(nil); err != nil {
				return nil, d, false, err
			}
			continue
		}
		if err != nil {
			return nil, d, false, s.waitFailed(err)
		}
		if rideOut && !s.stillPrimary() {
			// Another server became the primary while this one was
			// down: it must not take writes any more.
			c.Pool().Release(c, false)
			if err := s.waitFailed(nil); err != nil {
				return nil, d, false, err
			}
			continue
		}
		// A session-mode lease comes reset (DISCARD ALL), so nothing of
		// another client's can break its settings: they go out with the
		// request, as at login.
		if s.l.mode != config.PoolSession {
			if ok, err := s.bringUp(c, &syncTries); !ok {
				// c went back; a cancel meanwhile ends the request.
				if err = s.waitFailed(err); err != nil {
					return nil, d, false, err
				}
				continue
			}
		}
		if !s.attach(c, d) {
			return nil, d, false, abandon(c)
		}
		s.noteAssigned(start)
		return c, d, true, nil
	}
}

// mustLeaveReplica: the lease is on a replica outside a transaction (held
// only by pipelined reads) and cls must run on the primary. Inside an
// unfinished extended-protocol batch (sent on ahead of its Sync) the rest
// of the batch belongs on the same server, so it stays. s.mu is held.
//
// A lease held only by the proxy's own statements (the WAL-position read
// after a commit) ends in a moment; the request waits for that and is
// routed afresh rather than riding along wherever the last one went.
func (s *Session) mustLeaveReplica(cls *parser.Classification) bool {
	if !s.routed() || s.rs.InTxn || s.openBatch || s.pinned != 0 {
		return false
	}
	if s.leaseDecision.Target == router.Replica && router.Decide(cls, &s.rs).Target == router.Primary {
		return true
	}
	for _, e := range s.pending {
		if !e.injected {
			return false
		}
	}
	return len(s.pending) > 0
}

// pinnedToReplica refuses, outside a transaction, a statement no replica
// can run (a write, DDL, a locking read, SERIALIZABLE) from a client that
// made session state in a read-only transaction, which ran on a replica,
// and is pinned there. The replica would refuse it too, in words that
// do not say why the statement is there. s.mu is held.
func (s *Session) pinnedToReplica(cls *parser.Classification) error {
	if !s.routed() || s.pinned == 0 || s.rs.InTxn || s.leaseDecision.Target != router.Replica || cls == nil {
		return nil
	}
	rs := s.rs
	rs.Pinned = false
	switch router.Decide(cls, &rs).Reason {
	case router.ReasonWrite, router.ReasonDDL, router.ReasonLocking, router.ReasonSerializable:
	default:
		return nil
	}
	return pgerr.New(pgerr.ReadOnlySQLTransaction,
		"pgninja: this client is pinned to replica %q by its session state (%s), and a replica cannot run this",
		s.leaseDecision.Backend, s.pinned).
		WithHint("The state was made in a read-only transaction, which runs on a replica. End it first " +
			"(CLOSE, pg_advisory_unlock_all(), RESET ROLE or DISCARD ALL), or make it outside a read-only transaction.")
}

// mustEndOpenPart: the client left a batch open on a replica, sent on
// ahead of its Sync with Flush, that ran nothing, and now sends a simple
// query that must run on the primary. asyncpg prepares that way (Parse,
// Describe, Flush), and its copy_records_to_table then sends COPY FROM
// STDIN, which failed on the replica the batch held. A Query ends such a
// batch in PostgreSQL, so the proxy ends it with a Sync of its own and
// routes the query afresh. s.mu is held.
func (s *Session) mustEndOpenPart(cls *parser.Classification) bool {
	n := len(s.pending)
	if !s.routed() || s.rs.InTxn || s.pinned != 0 || n == 0 || len(s.req) == 0 || s.req[0] != 'Q' ||
		s.leaseDecision.Target != router.Replica {
		return false
	}
	if open := &s.pending[n-1]; !open.open || open.plan == nil || open.plan.executes() {
		return false
	}
	return router.Decide(cls, &s.rs).Target == router.Primary
}

// endOpenPart turns the open batch into one the proxy ended: its
// ReadyForQuery, answering the proxy's Sync, is the client's to miss,
// and the safe point that lets the connection go. s.mu is held.
func (s *Session) endOpenPart() {
	open := &s.pending[len(s.pending)-1]
	open.open, open.injected = false, true
	s.openBatch = false
}

// acquire leases from the decided backend. A replica that cannot give a
// connection (before any byte of the request was sent) is not the
// client's problem: the request goes to the primary instead, rather than
// wait for a replica that is restarting or gone. A request reading the
// client's sequence values takes the connection holding them if it is
// idle.
func (s *Session) acquire(ctx context.Context, cls *parser.Classification, d router.Decision) (*pool.Conn, router.Decision, error) {
	p, ok := s.poolFor(d.Backend)
	if !ok {
		p, d = s.pool, s.primaryInstead()
	}
	if want := s.sequenceConn(cls, p); want != nil {
		if c := p.AcquireIdle(ctx, want); c != nil {
			return c, d, nil
		}
	}
	acquire := p.Acquire
	if d.Target == router.Replica {
		acquire = p.AcquireIfUp
	}
	c, err := acquire(ctx)
	if err != nil && d.Target == router.Replica && ctx.Err() == nil {
		s.srv.log.Debug("replica unavailable; using the primary", "backend", d.Backend, "err", err)
		d = s.primaryInstead()
		c, err = s.pool.Acquire(ctx)
	}
	return c, d, err
}

// bringUp brings a newly leased connection to the client's session
// settings before anything of the client's goes out on it. That costs a
// round trip, and only when the connection's last client had other
// settings; pipelined ahead of the request, a setting that failed to
// apply (a RESET cancelled by the 1 ms statement_timeout it was removing,
// left by the last client) let the request run with another client's
// setting. Each setting runs as a query of its own, so one failing does
// not leave the rest (search_path, say) unset.
//
// When one fails the connection is closed, whatever it then holds, and
// bringUp answers false once so that the caller leases another. If that
// fails too, the failure is the client's own (a setting that no longer
// applies, such as a dropped text search configuration): the request
// runs without it, the client is warned with the server's SQLSTATE, and
// the session stops replaying it, rather than fail and close two server
// connections on every request. A connection that breaks meanwhile is
// replaced twice, then its error is the request's.
func (s *Session) bringUp(c *pool.Conn, tries *int) (ok bool, err error) {
	st := stateOf(c, s.st.cfg.Pool.MaxPreparedStatements)
	s.mu.Lock()
	stmts := s.params.syncSQL(st)
	s.mu.Unlock()
	if len(stmts) == 0 {
		return true, nil
	}
	ctx, cancel := context.WithTimeout(context.Background(), s.st.cfg.Pool.ConnectTimeout)
	failed, err := c.ExecEach(ctx, stmts)
	cancel()
	if err == nil && !slices.ContainsFunc(failed, func(e error) bool { return e != nil }) {
		return true, nil
	}
	c.MarkBroken()
	if err != nil || *tries == 0 {
		*tries++
		c.Pool().Release(c, false)
		if err != nil && *tries > 2 {
			return false, pgerr.Wrap(err, pgerr.SeverityError, pgerr.ConnectionFailure,
				"pgninja: server connection lost while applying this session's settings")
		}
		s.srv.log.Debug("bringing a server connection to the session's settings failed; trying another",
			"user", s.l.user.Name, "err", err, "failed", failed)
		return false, nil
	}
	for i, e := range failed {
		if e != nil {
			s.mu.Lock()
			s.params.forget(stmts[i])
			s.mu.Unlock()
			s.warnSetting(e)
		}
	}
	return true, nil
}

// warnSetting tells the client that one of its session settings could
// not be applied on its new server connection.
func (s *Session) warnSetting(err error) {
	r := pgerr.Response(err)
	s.srv.log.Warn("pgninja session setting failed on a server connection", "user", s.l.user.Name,
		"code", r.Code, "message", r.Message)
	_ = s.warn(&pgproto3.NoticeResponse{Code: r.Code, Detail: r.Detail,
		Message: "pgninja: a setting of this session could not be applied on its server connection: " + r.Message,
		Hint:    "This session goes on without it; set it again once it applies."})
}

// attach makes c the session's lease and brings it to the client's
// session settings; the caller starts the relay once the request is out.
// It refuses c (false) when a CancelRequest ended the wait for it.
func (s *Session) attach(c *pool.Conn, d router.Decision) bool {
	st := stateOf(c, s.st.cfg.Pool.MaxPreparedStatements)
	s.mu.Lock()
	if s.endWait() {
		s.mu.Unlock()
		return false
	}
	sync := strings.Join(s.params.syncSQL(st), "; ")
	s.lease = c
	s.leaseDecision = d
	s.openBatch = true
	if sync != "" {
		s.pending = append(s.pending, expect{injected: true})
	}
	s.mu.Unlock()
	if sync != "" {
		s.serverWrite.Lock()
		_ = bufferQuery(c.W, sync)
		s.serverWrite.Unlock()
	}
	return true
}

// detach ends the lease on c, if it is still the session's; the caller
// holds s.mu. Waiters in ensureLease are woken.
func (s *Session) detach(c *pool.Conn) {
	if s.lease != c {
		return
	}
	s.lease = nil
	// A Sync owed to this connection's server means nothing to the next.
	s.copySyncOwed, s.copyingIn = false, false
	if s.leaseDone != nil {
		close(s.leaseDone)
		s.leaseDone = nil
	}
}

// leaseEnded returns a channel closed when the current lease ends; the
// caller holds s.mu and the session holds a lease. It is made only for
// those who wait, not per lease.
func (s *Session) leaseEnded() <-chan struct{} {
	if s.leaseDone == nil {
		s.leaseDone = make(chan struct{})
	}
	return s.leaseDone
}

// cancel forwards a client's CancelRequest to the server connection
// running its request. The lock is held while the request is written so
// the connection cannot be released to another client meanwhile.
func (s *Session) cancel() {
	s.mu.Lock()
	defer s.mu.Unlock()
	c := s.lease
	if c == nil {
		s.cancelWait()
		return
	}
	if len(s.pending) == 0 && !s.openBatch {
		return
	}
	// Under s.mu, so c cannot go back to the pool, and to another
	// client, before its cancel has reached the server.
	c.Pool().NoteCancel(1)
	err := sendCancel(c.Addr, c.PID, c.Secret)
	c.Pool().NoteCancel(-1)
	if err != nil {
		s.srv.log.Warn("cancel request to server failed", "server", c.Addr, "err", err)
	}
}

// drain ends the session with err now if it is idle, else at its next
// safe point; a nil err is the shutdown's.
func (s *Session) drain(err error) {
	s.mu.Lock()
	s.draining = true
	if err != nil {
		s.drainErr = err
	}
	idle := len(s.pending) == 0 && !s.openBatch && s.txStatus == 'I'
	s.mu.Unlock()
	if idle {
		s.kill(s.drainReason())
	}
}

// drainReason is what a draining session is ended with.
func (s *Session) drainReason() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.drainErr != nil {
		return s.drainErr
	}
	return errShutdown
}

// errShutdown ends a client when pgninja stops.
var errShutdown = pgerr.Fatal(pgerr.AdminShutdown, "terminating connection due to administrator command")

// killWriteTimeout is how long a client being thrown out has to take its
// last error. One that reads nothing has a full socket buffer, and a relay
// blocked writing to it holds the write lock; the deadline frees both.
const killWriteTimeout = time.Second

// kill sends a final error and closes the client's socket; the session
// goroutine then sees the close and cleans up.
func (s *Session) kill(err error) {
	_ = s.c.Conn.SetWriteDeadline(time.Now().Add(killWriteTimeout))
	_ = s.c.sendError(err, 0)
	s.closeClient()
}

// closeClient closes the client's socket from outside the session's
// goroutine. A session parked in the lot has no goroutine to see the
// close, and a socket closed in the lot's epoll set silently leaves it:
// the session is resumed first, while its socket is still its own, and
// once more after, for one that was parking meanwhile.
func (s *Session) closeClient() {
	lot := s.srv.lot
	if lot != nil {
		lot.wake(s)
	}
	_ = s.c.Conn.Close()
	if lot != nil {
		lot.wake(s)
	}
}

// leave returns the server connection after the client has gone. An idle
// connection is sent its cleanup (ROLLBACK when inside a transaction, then
// the reset query) in one write; the relay, which wakes on the answers,
// hands it back once they succeed. A busy one is abandoned (closed and
// its query cancelled), because its results have nobody to go to and its
// state cannot be vouched for.
func (s *Session) leave() {
	s.mu.Lock()
	s.gone = true
	c := s.lease
	if c == nil {
		s.mu.Unlock()
		return
	}
	if len(s.pending) > 0 || s.openBatch {
		s.abandon(c, "client left")
		s.mu.Unlock()
		return
	}
	cleanup := make([]byte, 0, 32+len(s.st.cfg.Pool.ResetQuery))
	if s.txStatus != 'I' {
		cleanup = appendQuery(cleanup, "ROLLBACK")
		s.pending = append(s.pending, expect{injected: true})
	}
	// Without a reset query an empty query still wakes the relay.
	cleanup = appendQuery(cleanup, s.st.cfg.Pool.ResetQuery)
	s.pending = append(s.pending, expect{injected: true, reset: s.st.cfg.Pool.ResetQuery != ""})
	s.mu.Unlock()
	s.writeServer(c, cleanup)
}
