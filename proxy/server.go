package proxy

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/ai-ninja/pgninja/config"
	"github.com/ai-ninja/pgninja/internal/auth"
	"github.com/ai-ninja/pgninja/internal/pgerr"
	"github.com/ai-ninja/pgninja/internal/rawconn"
	"github.com/ai-ninja/pgninja/internal/reuseport"
	"github.com/ai-ninja/pgninja/pool"
	"github.com/ai-ninja/pgninja/router"
	"github.com/prometheus/client_golang/prometheus"
)

// startupTimeout bounds the time from accept to the end of authentication,
// as PostgreSQL's authentication_timeout does.
const startupTimeout = 60 * time.Second

// idleWorkers bounds the goroutines kept waiting for the next client.
const idleWorkers = 64

// Deps are what a Server is built from; cmd assembles them.
type Deps struct {
	Config *config.Config
	Pools  *pool.Manager
	// Router splits reads and writes; nil sends everything to the primary.
	Router   *router.Router
	Log      *slog.Logger
	Registry prometheus.Registerer
	// Reload re-reads the config file and applies it, as SIGHUP does; the
	// admin console's RELOAD calls it. Nil: there is no file to re-read.
	Reload func() error
	// Reloaded is told of each configuration the server took on, from
	// the file (Reload) or the console's SET, to apply what lives outside
	// the proxy (scheduler threads, log level). Nil: nothing outside.
	Reloaded func(*config.Config)
	// Shutdown stops pgninja as SIGTERM does; the console's SHUTDOWN
	// calls it. Nil: the console cannot stop it.
	Shutdown func()
}

// Server accepts clients and runs their sessions.
type Server struct {
	log         *slog.Logger
	pools       *pool.Manager
	homes       poolHomes // the config entries each pool is sized by
	router      *router.Router
	consistency router.Consistency
	auth        *auth.Authenticator
	authQueries authQueries
	keys        *cancelKeys
	metrics     *metrics
	classifiers *classifiers
	epochs      *schemaEpochs
	// settingChecks: startup settings the servers accepted.
	settingChecks *settingChecks
	settings      atomic.Pointer[settings]
	reload        func() error
	reloaded      func(*config.Config)
	// configMu orders the configuration changes: a SET is made from and
	// swapped for the running configuration in one step.
	configMu sync.Mutex
	shutdown func()
	pauses   *pauses
	disabled disabled
	stats    *serverStats
	queries  *queryStats
	// adminPasswords checks the admin port's basic auth (adminauth.go).
	adminPasswords auth.PasswordCheck
	handlers       *workers[net.Conn]
	relays         *workers[relayJob]
	// resumes runs parked sessions on again (see parkinglot.go); lot is
	// nil until Serve, or when the system refused one.
	resumes *workers[*Session]
	lot     *parkingLot

	// seqClock stamps sequence values (see sequences.go).
	seqClock atomic.Uint64

	clients  atomic.Int64
	draining atomic.Bool

	mu        sync.Mutex
	listeners []net.Listener
	sessions  map[*Session]struct{}
	wg        sync.WaitGroup
}

// NewServer builds a Server from a validated config. The pools are shared
// with whoever else needs server connections.
func NewServer(d Deps) (*Server, error) {
	st, err := buildSettings(d.Config)
	if err != nil {
		return nil, err
	}
	consistency, err := router.ParseConsistency(d.Config.Routing.Consistency)
	if err != nil {
		return nil, err
	}
	s := &Server{
		log: d.Log, pools: d.Pools, router: d.Router, consistency: consistency,
		auth: auth.NewAuthenticator(), keys: newCancelKeys(),
		metrics: newMetrics(d.Registry), sessions: map[*Session]struct{}{},
		classifiers:   newClassifiers(d.Log),
		epochs:        newSchemaEpochs(),
		settingChecks: newSettingChecks(),
		reload:        d.Reload,
		reloaded:      d.Reloaded,
		shutdown:      d.Shutdown,
		pauses:        newPauses(),
		stats:         newServerStats(),
		queries:       newQueryStats(),
	}
	s.handlers = newWorkers(idleWorkers, func(nc net.Conn) {
		if !s.handle(nc) {
			s.wg.Done()
		}
	})
	s.relays = newWorkers(idleWorkers, func(j relayJob) { j.s.relay(j.c, false) })
	s.resumes = newWorkers(idleWorkers, func(sess *Session) {
		if !sess.resume() {
			s.endConn(sess)
			s.wg.Done()
		}
	})
	if d.Registry != nil {
		d.Registry.MustRegister(newStatsCollector(s))
		d.Registry.MustRegister(prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "pgninja_clients_parked",
			Help: "Idle clients waiting in the parking lot, with no goroutine and no read buffer of their own."},
			func() float64 { return float64(s.parkedClients()) }))
	}
	s.settings.Store(st)
	return s, nil
}

// Reload swaps in a new configuration for new logins and new pool leases.
// A configuration that fails to load changes nothing.
func (s *Server) Reload(cfg *config.Config) error {
	s.configMu.Lock()
	defer s.configMu.Unlock()
	return s.reloadLocked(cfg)
}

// reloadLocked is Reload with configMu held, which also keeps the
// Reloaded hook's calls in the order the configurations were taken on.
func (s *Server) reloadLocked(cfg *config.Config) error {
	if err := s.takeOn(cfg); err != nil {
		return err
	}
	if s.reloaded != nil {
		s.reloaded(cfg)
	}
	return nil
}

// takeOn swaps cfg in; configMu is held.
func (s *Server) takeOn(cfg *config.Config) error {
	if err := s.reloadable(cfg); err != nil {
		return err
	}
	if later := atRestart(s.settings.Load().cfg, cfg); len(later) > 0 {
		s.log.Warn("config reload: these settings take effect at restart", "settings", later)
	}
	st, err := buildSettings(cfg)
	if err != nil {
		return err
	}
	s.settings.Store(st)
	s.pools.SetLimitCaps(cfg.MaxDBConnectionsFor, cfg.MaxUserConnectionsFor)
	if s.router != nil {
		if err := s.router.Reconfigure(cfg); err != nil {
			// reloadable checked what Reconfigure refuses.
			s.log.Error("config reload: routing kept its old servers", "err", err)
		}
	}
	// A backend that moved takes its pools along now, not at their next
	// login: their connections to the old server close as they come back.
	// One that left closes them and keeps none open.
	s.pools.Each(func(k pool.Key, p *pool.Pool) {
		i := slices.IndexFunc(cfg.Backends, func(b config.Backend) bool { return b.Name == k.Backend })
		if i < 0 {
			p.Decommission()
			return
		}
		b, t := cfg.Backends[i], p.Target()
		t.Host, t.Port, t.SSLMode, t.ConnectTimeout = b.Host, b.Port, cfg.TLS.BackendMode, cfg.Pool.ConnectTimeout
		t.SSLFiles = cfg.TLS.BackendFiles()
		p.SetTarget(t)
	})
	s.resizePools(st)
	s.dropMovedDatabases(cfg)
	return nil
}

// reloadable refuses what a reload cannot apply. With routing on, the
// router takes new servers, weights, lag limits and health check
// settings; but turning routing on or off, its consistency mode (which
// the sessions' state follows) and which backend is the primary (which
// logged-in sessions hold their pools by) wait for a restart.
func (s *Server) reloadable(cfg *config.Config) error {
	old := s.settings.Load().cfg
	switch routes := router.Routes(cfg); {
	case s.router != nil && !routes && cfg.Routing.Enabled:
		return errors.New("backends: with routing on, a replica must stay (weight 0 drains one); removing the last takes effect at restart")
	case routes != (s.router != nil):
		return errors.New("routing: turning read routing on or off takes effect at restart")
	}
	if s.router == nil {
		return nil
	}
	if c, err := router.ParseConsistency(cfg.Routing.Consistency); err != nil || c != s.consistency {
		return errors.New("routing.consistency: takes effect at restart")
	}
	if cfg.Primary().Name != old.Primary().Name {
		return errors.New("backends: with routing on, naming another backend the primary takes effect at restart")
	}
	if len(cfg.Backends) > router.MaxBackends {
		return fmt.Errorf("backends: at most %d with routing on", router.MaxBackends)
	}
	return nil
}

// Listen opens the TCP listener and, when configured, the unix socket.
func (s *Server) Listen() error {
	cfg := s.settings.Load().cfg
	// Keepalive with the system's timings, as PgBouncer's default.
	// rawconn.Listen has accepted sockets inherit it and TCP_NODELAY from
	// the listening socket; the config here is for the net package's
	// accept, should rawconn not take the listener.
	lc := net.ListenConfig{KeepAliveConfig: net.KeepAliveConfig{Enable: true, Idle: -1, Interval: -1, Count: -1}}
	lc = reuseport.ListenConfig(lc, cfg.SOReusePort)
	ln, err := lc.Listen(context.Background(), "tcp", cfg.Listen)
	if err != nil {
		return err
	}
	s.addListener(rawconn.Listen(ln))
	if cfg.UnixSocketDir != "" {
		_, port, _ := net.SplitHostPort(cfg.Listen)
		path := filepath.Join(cfg.UnixSocketDir, ".s.PGSQL."+port)
		_ = os.Remove(path)
		uln, err := net.Listen("unix", path)
		if err != nil {
			ln.Close()
			return err
		}
		if cfg.SOReusePort {
			// A socket file has one listener: the newest process's. The
			// old one, stopping, must not unlink it from under the new.
			uln.(*net.UnixListener).SetUnlinkOnClose(false)
		}
		s.addListener(uln)
	}
	return nil
}

// Addr returns the TCP listener's address.
func (s *Server) Addr() net.Addr {
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.listeners) == 0 {
		return nil
	}
	return s.listeners[0].Addr()
}

func (s *Server) addListener(ln net.Listener) {
	s.mu.Lock()
	s.listeners = append(s.listeners, ln)
	s.mu.Unlock()
}

// Serve accepts on every listener until Shutdown.
func (s *Server) Serve() error {
	s.mu.Lock()
	lns := append([]net.Listener(nil), s.listeners...)
	// Before the first client, which reads s.lot without the lock.
	if s.lot == nil && !s.draining.Load() {
		lot, err := newParkingLot(s.resumes.Go)
		if err != nil {
			// Parked clients then wait on their sessions' goroutines.
			s.log.Warn("no parking lot for idle clients", "err", err)
		} else {
			s.lot = lot
		}
	}
	s.mu.Unlock()
	errc := make(chan error, len(lns))
	for _, ln := range lns {
		go func(ln net.Listener) { errc <- s.accept(ln) }(ln)
	}
	done := make(chan struct{})
	defer close(done)
	go s.sampleStats(done)
	go s.sweepSessions(done)
	if s.router != nil {
		go s.watchReplicas(done)
	}
	var first error
	for range lns {
		if err := <-errc; err != nil && first == nil {
			first = err
		}
	}
	return first
}

func (s *Server) accept(ln net.Listener) error {
	var delay time.Duration
	for {
		nc, err := ln.Accept()
		if err != nil {
			if s.draining.Load() || errors.Is(err, net.ErrClosed) {
				return nil
			}
			var retry bool
			if delay, retry = acceptRetry(err, delay); !retry {
				return err
			}
			s.log.Warn("accept failed; clients already in are served, new ones wait", "err", err, "retry_in", delay)
			time.Sleep(delay)
			continue
		}
		delay = 0
		nc = rawconn.Wrap(nc)
		s.wg.Add(1)
		s.handlers.Go(nc)
	}
}

// acceptRetry tells an Accept error to wait out from one that ends the
// listener, and how long to wait, after waiting last time: doubling from
// 5 ms to 1 s, as net/http's server does. Out of descriptors or kernel
// memory is a moment's shortage (PgBouncer, too, pauses and accepts
// again): the clients already connected go on, and the listen backlog
// holds new ones meanwhile.
func acceptRetry(err error, last time.Duration) (wait time.Duration, retry bool) {
	var ne net.Error
	switch {
	case errors.As(err, &ne) && ne.Timeout():
	case errors.Is(err, syscall.EMFILE), errors.Is(err, syscall.ENFILE),
		errors.Is(err, syscall.ENOBUFS), errors.Is(err, syscall.ENOMEM):
	default:
		return 0, false
	}
	if last == 0 {
		return 5 * time.Millisecond, true
	}
	return min(2*last, time.Second), true
}

// handle runs one connection from its first byte to its close, or until
// its session is parked; the resumption then finishes it (endConn).
func (s *Server) handle(nc net.Conn) (parked bool) {
	st := s.settings.Load()
	_ = nc.SetDeadline(time.Now().Add(startupTimeout))
	pkt, nc, err := s.negotiate(nc, st)
	if err != nil {
		if pgerr.SQLState(err) != "" {
			_ = newClientConn(nc, st.cfg.MaxMessageSize).sendError(err, 0)
		}
		s.log.Debug("startup failed", "remote", nc.RemoteAddr().String(), "err", err)
		_ = nc.Close()
		return false
	}
	if pkt.code == codeCancel {
		s.metrics.cancels.Inc()
		if sess := s.keys.lookup(pkt.cancelPID, pkt.cancelKey); sess != nil {
			sess.cancel()
		}
		_ = nc.Close()
		return false
	}
	if s.draining.Load() {
		_ = newClientConn(nc, st.cfg.MaxMessageSize).sendError(
			pgerr.Fatal(pgerr.CannotConnectNow, "pgninja is shutting down"), 0)
		_ = nc.Close()
		return false
	}
	cc := newClientConn(nc, st.cfg.MaxMessageSize)
	sess := newSession(s, cc, st)
	if !s.track(sess) {
		cc.release()
		_ = nc.Close()
		return false
	}
	if sess.run(pkt) {
		return true
	}
	s.endConn(sess)
	return false
}

// parkedClients is how many clients wait in the parking lot.
func (s *Server) parkedClients() int {
	s.mu.Lock()
	lot := s.lot
	s.mu.Unlock()
	if lot == nil {
		return 0
	}
	return lot.len()
}

// endConn is the end of a tracked session's connection.
func (s *Server) endConn(sess *Session) {
	s.untrack(sess)
	sess.c.release()
	_ = sess.c.Conn.Close()
}

// negotiate handles SSLRequest and GSSENCRequest until the real startup
// packet (or a cancel request) arrives. It may return a TLS-wrapped conn.
func (s *Server) negotiate(nc net.Conn, st *settings) (*startupPacket, net.Conn, error) {
	tlsDone := false
	for {
		pkt, err := readStartupPacket(nc)
		if err != nil {
			return nil, nc, err
		}
		switch pkt.code {
		case codeGSSENC:
			if _, err := nc.Write([]byte{'N'}); err != nil {
				return nil, nc, err
			}
			continue
		case codeSSL:
			if tlsDone {
				return nil, nc, pgerr.Fatal(pgerr.ProtocolViolation, "SSLRequest after TLS was set up")
			}
			if st.tls == nil {
				if _, err := nc.Write([]byte{'N'}); err != nil {
					return nil, nc, err
				}
				continue
			}
			if _, err := nc.Write([]byte{'S'}); err != nil {
				return nil, nc, err
			}
			tc := tls.Server(nc, st.tls)
			if err := tc.Handshake(); err != nil {
				return nil, nc, fmt.Errorf("tls handshake: %w", err)
			}
			nc, tlsDone = tc, true
			continue
		}
		if pkt.code != codeCancel && st.cfg.TLS.Require && !tlsDone {
			return nil, nc, pgerr.Fatal(pgerr.InvalidAuthorization, "pgninja requires SSL connections")
		}
		return pkt, nc, nil
	}
}

func (s *Server) track(sess *Session) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.draining.Load() {
		return false
	}
	s.sessions[sess] = struct{}{}
	return true
}

// sessionList is a copy of the tracked sessions, to visit without the
// server's lock.
func (s *Server) sessionList() []*Session {
	s.mu.Lock()
	defer s.mu.Unlock()
	sessions := make([]*Session, 0, len(s.sessions))
	for sess := range s.sessions {
		sessions = append(sessions, sess)
	}
	return sessions
}

func (s *Server) untrack(sess *Session) {
	s.mu.Lock()
	delete(s.sessions, sess)
	s.mu.Unlock()
	if db, ok := sess.statsDB(); ok {
		s.stats.depart(db, &sess.stats)
	}
}

// Shutdown stops accepting, ends idle sessions at once and the others at
// their next safe point, and closes what is left when ctx ends.
func (s *Server) Shutdown(ctx context.Context) error {
	defer s.authQueries.close()
	defer s.classifiers.close()
	s.draining.Store(true)
	s.pauses.endAll()
	s.handlers.Stop()
	s.relays.Stop()
	s.mu.Lock()
	for _, ln := range s.listeners {
		_ = ln.Close()
	}
	s.mu.Unlock()
	// No session is tracked after draining is set (see track).
	for _, sess := range s.sessionList() {
		sess.drain(nil)
	}
	s.resumes.Stop()
	done := make(chan struct{})
	go func() {
		s.wg.Wait()
		s.mu.Lock()
		if s.lot != nil {
			s.lot.close()
		}
		s.mu.Unlock()
		close(done)
	}()
	select {
	case <-done:
		return nil
	case <-ctx.Done():
		// At once for all: a client that reads nothing takes up to
		// killWriteTimeout.
		var wg sync.WaitGroup
		for _, sess := range s.sessionList() {
			wg.Go(func() {
				sess.kill(pgerr.Fatal(pgerr.AdminShutdown, "terminating connection: pgninja shutdown timeout"))
			})
		}
		wg.Wait()
		<-done
		return ctx.Err()
	}
}

// ClientCount is the number of connected clients.
func (s *Server) ClientCount() int64 { return s.clients.Load() }
