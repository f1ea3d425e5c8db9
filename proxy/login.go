package proxy

import (
	"context"
	"strconv"
	"strings"
	"time"

	"github.com/ai-ninja/pgninja/config"
	"github.com/ai-ninja/pgninja/internal/pgerr"
	"github.com/ai-ninja/pgninja/internal/wire"
	"github.com/ai-ninja/pgninja/pool"
	"github.com/ai-ninja/pgninja/router"
	"github.com/jackc/pgx/v5/pgproto3"
)

// login authenticates the client and sends everything up to its first
// ReadyForQuery. Errors carry the SQLSTATE the client must see.
func (s *Session) login(pkt *startupPacket) error {
	st := s.st
	switch pkt.params["replication"] {
	case "", "false", "off", "no", "0":
	default:
		return pgerr.Fatal(pgerr.FeatureNotSupported, "pgninja does not proxy replication connections")
	}
	if opts := pkt.protocolOptions(); pkt.minor() > 0 || len(opts) > 0 {
		if err := s.c.Send(&pgproto3.NegotiateProtocolVersion{NewestMinorProtocol: 0, UnrecognizedOptions: opts}); err != nil {
			return err
		}
	}
	userName := pkt.params["user"]
	dbName := pkt.params["database"]
	if dbName == "" {
		dbName = userName
	}
	// PostgreSQL's own words, which drivers' tests and users' scripts
	// match on.
	noRole := func() error { return pgerr.Fatal(pgerr.InvalidAuthorization, "role %q does not exist", userName) }
	u, secret, known := st.resolveUser(userName)
	if st.cfg.IsConsole(dbName) {
		if !known {
			return noRole()
		}
		return s.consoleLogin(pkt, u, secret, dbName, st)
	}
	if !known && st.cfg.Auth.Query == "" {
		return noRole()
	}
	db, ok := st.cfg.Database(dbName)
	if !ok {
		return pgerr.Fatal(pgerr.InvalidCatalogName, "database %q does not exist", dbName)
	}
	// Before auth.query: a client the rules refuse makes no lookup. A
	// user the query finds has no method of its own, as u has none yet.
	method, err := st.authMethod(s.c.Conn, dbName, userName, u)
	if err != nil {
		return err
	}
	if !known {
		if u, secret, known, err = s.srv.authQueries.lookup(st, db.DBName, userName); err != nil {
			return err
		}
		if !known {
			return noRole()
		}
	}
	if n := s.srv.clients.Add(1); n > int64(st.cfg.MaxClientConn) {
		s.srv.clients.Add(-1)
		return pgerr.Fatal(pgerr.TooManyConnections, "sorry, too many clients already (max_client_conn %d)", st.cfg.MaxClientConn)
	}
	// From here the client counts against max_client_conn until it leaves.
	s.countedClient = true
	keys, err := s.srv.auth.Check(s.c, method, userName, secret, st.endPointFor(s.c.Conn))
	if err != nil {
		return err
	}
	// Checked after the password, as PostgreSQL checks datallowconn.
	if s.srv.disabled.has(dbName) {
		return errDisabled(dbName)
	}
	l := &login{user: u, db: db, dbName: dbName, mode: st.cfg.PoolModeFor(db, u),
		method: method, secret: secret, keys: keys, poolSize: st.cfg.PoolSizeFor(db, u), appName: pkt.params["application_name"]}
	primary := st.cfg.Primary()
	s.primaryName = primary.Name
	t := st.target(primary, l)
	home := s.srv.poolOf(st, pool.Key{Backend: primary.Name, Database: t.Database, User: t.User}, t, l)
	// Under the lock, for the admin console's view of the session.
	s.mu.Lock()
	s.l, s.pool, s.role = l, home, t.User
	s.mu.Unlock()
	if err := s.recheckDatabase(); err != nil {
		return err
	}
	s.classifier = s.srv.classifiers.forDB(t)
	s.epoch = s.srv.epochs.forDB(t.Database)

	serverParams, err := s.serverParams()
	if err != nil {
		return asFatal(err)
	}
	s.mu.Lock()
	s.superuser = serverParams["is_superuser"] == "on"
	s.serverMajor = majorVersion(serverParams["server_version"])
	s.mu.Unlock()
	s.params = newParamSet(pkt.sessionParams())
	// Startup settings routing reads (pgninja.route and the like) hold from
	// the first statement, as a SET would. (Without routing pgninja.route
	// is an ordinary placeholder setting, as SET treats it then.)
	if s.routed() {
		if err := s.rs.ApplyStartup(s.params.startup); err != nil {
			return pgerr.Fatal(pgerr.InvalidParameterValue, "%s", err.Error())
		}
	}
	lease := s.leaseForSession()
	if err := s.checkStartupSettings(lease); err != nil {
		if lease != nil {
			s.pool.Release(lease, false)
		}
		return err
	}
	if lease != nil {
		s.attachAtLogin(lease)
		// The relay starts once the client has its login messages, so
		// nothing the server says can come before them.
		defer s.startRelay(lease, false)
		s.srv.keys.register(s, lease.PID)
	} else {
		s.srv.keys.register(s, 0)
	}

	// From here the client's bytes count for SHOW STATS.
	s.c.src.count = &s.stats.received
	s.c.wmu.Lock()
	s.c.out.count = &s.stats.sent
	s.c.wmu.Unlock()
	return s.loggedIn(s.params.appendReported(loginOK(), serverParams))
}

// majorVersion reads the major version from a server_version such as
// "15.18 (Debian 15.18-0+deb12u1)"; 0 when it cannot.
func majorVersion(v string) int {
	end := strings.IndexFunc(v, func(r rune) bool { return r < '0' || r > '9' })
	if end < 0 {
		end = len(v)
	}
	n, _ := strconv.Atoi(v[:end])
	return n
}

// loginOK starts a login's last answer: AuthenticationOk, then the
// ParameterStatus messages the caller appends. Encoded by hand into one
// buffer: as pgproto3 messages these were a fifth of a login's
// allocations.
func loginOK() []byte {
	out := wire.AppendHeader(make([]byte, 0, 512), 'R', 4)
	return append(out, 0, 0, 0, 0)
}

// loggedIn ends the login: out (from loginOK) with BackendKeyData and the
// first ReadyForQuery goes out, and the session is ready for requests.
func (s *Session) loggedIn(out []byte) error {
	out = wire.Append(out, &pgproto3.BackendKeyData{ProcessID: s.keyPID, SecretKey: s.keySecret})
	out = append(out, 'Z', 0, 0, 0, 5, 'I')
	s.out = out[:0]
	_ = s.c.Conn.SetDeadline(time.Time{})
	if s.console == config.ConsoleNone {
		// A client that logs in and says nothing is idle too.
		s.idleDeadline('I')
	}
	s.phase = phaseReady
	return s.c.SendRaw(out)
}

// leaseForSession takes a session-mode client's server connection at
// login, so that the process ID in its BackendKeyData is that of the
// backend serving it: a pid passed to pg_terminate_backend, or looked up
// in pg_stat_activity, is the one pg_backend_pid() returns. When the pool
// is full or the server cannot be reached, the client logs in as it would
// in transaction mode, with a process ID of the proxy's, and its first
// query waits for a connection or reports the failure.
func (s *Session) leaseForSession() *pool.Conn {
	if s.l.mode != config.PoolSession || s.srv.pauses.holding(s.l.dbName) != nil {
		// Paused, the client logs in and its first request waits.
		return nil
	}
	// A dial has its own connect timeout; no timer is made per login.
	c, err := s.pool.TryAcquire(context.Background())
	if err != nil || c == nil {
		return nil
	}
	return c
}

// attachAtLogin makes c the session-mode client's lease. The SET
// statements attach writes to bring the connection to the client's
// settings are flushed with the first request, not in a round trip of
// their own.
func (s *Session) attachAtLogin(c *pool.Conn) {
	s.attach(c, router.Decision{Target: router.Primary, Backend: s.primaryName})
	s.mu.Lock()
	s.openBatch = false
	s.mu.Unlock()
}

// serverParams is the pool's ParameterStatus set; only the first logins
// to a pool wait (with a timer) for a connection to report it.
func (s *Session) serverParams() (map[string]string, error) {
	if params := s.pool.KnownParams(); params != nil {
		return params, nil
	}
	ctx, cancel := context.WithTimeout(context.Background(), s.st.cfg.Pool.AcquireTimeout+s.st.cfg.Pool.ConnectTimeout)
	defer cancel()
	return s.pool.Params(ctx)
}

// asFatal turns a failure to reach the server during login into a FATAL
// error that keeps the server's own SQLSTATE.
func asFatal(err error) error {
	r := pgerr.Response(err)
	return &pgerr.Error{Severity: pgerr.SeverityFatal, Code: r.Code, Message: r.Message,
		Detail: r.Detail, Hint: r.Hint, Cause: err}
}
