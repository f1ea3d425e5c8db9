package proxy

import (
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"net"
	"os"
	"time"

	"github.com/ai-ninja/pgninja/config"
	"github.com/ai-ninja/pgninja/internal/auth"
	"github.com/ai-ninja/pgninja/internal/hba"
	"github.com/ai-ninja/pgninja/pool"
)

// settings is what sessions read from the configuration. It is built and
// checked whole, then swapped in atomically, so a reload never leaves a
// half-applied state and a bad one changes nothing.
type settings struct {
	cfg     *config.Config
	secrets map[string]auth.Secret
	tls     *tls.Config
	// endPoint is the certificate's SCRAM channel binding data (nil
	// without TLS, or for a certificate that has none).
	endPoint []byte
	// hba holds auth.hba_file's rules; nil when there is none.
	hba *hba.Rules
}

func buildSettings(cfg *config.Config) (*settings, error) {
	st := &settings{cfg: cfg, secrets: map[string]auth.Secret{}}
	if cfg.Auth.UsersFile != "" {
		users, err := auth.LoadUsersFile(cfg.Auth.UsersFile)
		if err != nil {
			return nil, fmt.Errorf("auth.users_file: %w", err)
		}
		st.secrets = users
	}
	if cfg.Auth.HBAFile != "" {
		rules, err := hba.Load(cfg.Auth.HBAFile)
		if err != nil {
			return nil, fmt.Errorf("auth.hba_file: %w", err)
		}
		st.hba = rules
	}
	if cfg.TLS.CertFile != "" {
		cert, err := tls.LoadX509KeyPair(cfg.TLS.CertFile, cfg.TLS.KeyFile)
		if err != nil {
			return nil, fmt.Errorf("tls: %w", err)
		}
		st.tls = &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}
		if cfg.TLS.ClientCAFile != "" {
			pem, err := os.ReadFile(cfg.TLS.ClientCAFile)
			if err != nil {
				return nil, fmt.Errorf("tls.client_ca_file: %w", err)
			}
			st.tls.ClientCAs = x509.NewCertPool()
			if !st.tls.ClientCAs.AppendCertsFromPEM(pem) {
				return nil, fmt.Errorf("tls.client_ca_file: no PEM certificate in %s", cfg.TLS.ClientCAFile)
			}
			// A certificate a client presents must chain to them; whether
			// one is needed is the hba rules' to say.
			st.tls.ClientAuth = tls.VerifyClientCertIfGiven
		}
		// Without binding data, clients on TLS get SCRAM without -PLUS.
		if leaf, err := x509.ParseCertificate(cert.Certificate[0]); err == nil {
			st.endPoint, _ = auth.TLSServerEndPoint(leaf)
		}
	}
	return st, nil
}

// endPointFor is the channel binding data for a client on nc: the
// certificate's when nc is the TLS connection these settings made.
func (st *settings) endPointFor(nc net.Conn) []byte {
	if _, ok := nc.(*tls.Conn); ok {
		return st.endPoint
	}
	return nil
}

// login is what a client's startup resolves to.
type login struct {
	user   config.User
	db     config.Database
	dbName string // as the client asked
	mode   string
	method string
	secret auth.Secret
	// keys log in to the servers for a user known only by its SCRAM
	// verifier, from the client's own login (auth.Keys).
	keys     auth.Keys
	poolSize int
	appName  string // application_name at startup
}

// resolveUser finds the client's user; a user in the users file but not in
// the config logs in to the servers with its own name and plain password.
func (st *settings) resolveUser(name string) (config.User, auth.Secret, bool) {
	u, inCfg := st.cfg.User(name)
	sec, inFile := st.secrets[name]
	if !inCfg && !inFile {
		return config.User{}, auth.Secret{}, false
	}
	if !inCfg {
		u = config.User{Name: name, Password: sec.Plain}
	}
	if !inFile {
		sec = auth.Secret{Plain: u.Password}
	}
	return u, sec, true
}

func (st *settings) method(u config.User) string {
	if u.Auth != "" {
		return u.Auth
	}
	return st.cfg.Auth.Type
}

// poolOptions turns the config into a pool's limits.
func (st *settings) poolOptions(size int, limits []*pool.Limit) pool.Options {
	p := st.cfg.Pool
	min := p.MinSize
	if min > size {
		min = size
	}
	return pool.Options{
		MinSize: min, MaxSize: size, ReserveSize: p.ReserveSize,
		ReserveTimeout: p.ReserveTimeout, AcquireTimeout: p.AcquireTimeout, RestartWait: p.RestartWait,
		IdleTimeout: p.IdleTimeout, MaxLifetime: p.MaxLifetime,
		HealthCheckAfter: p.HealthCheckAfter, ResetQuery: p.ResetQuery, Limits: limits,
	}
}

// poolOf returns the pool k for a client logged in as l, made or
// updated with st's options for l's pool size, under its database's and
// user's caps. l's entries become the pool's home (poolhomes.go).
func (srv *Server) poolOf(st *settings, k pool.Key, t pool.Target, l *login) *pool.Pool {
	srv.homes.note(k, poolHome{db: l.dbName, user: l.user.Name})
	return srv.sizedPool(st, k, t, l.poolSize)
}

func (srv *Server) sizedPool(st *settings, k pool.Key, t pool.Target, size int) *pool.Pool {
	limits := srv.pools.Limits(k, st.cfg.MaxDBConnectionsFor(k.Database), st.cfg.MaxUserConnectionsFor(k.User))
	return srv.pools.Get(k, t, st.poolOptions(size, limits))
}

// resizePools gives every pool the pool settings of st (size, minimum,
// reserve, timeouts) by its home entries, as a login by them would: a
// pool_size raised on the console or in the file helps the clients
// already queued, not only those yet to connect, and a size or
// min_pool_size lowered closes server connections also in pools nobody
// is logged in to. A pool whose user entry is gone keeps its settings;
// one whose database no entry leads to any more is decommissioned
// (dbremoved.go).
func (srv *Server) resizePools(st *settings) {
	srv.pools.Each(func(k pool.Key, p *pool.Pool) {
		h, ok := srv.homes.get(k)
		if !ok {
			return
		}
		db, dbOK := st.cfg.Database(h.db)
		u, _, userOK := st.resolveUser(h.user)
		if dbOK && userOK {
			srv.sizedPool(st, k, p.Target(), st.cfg.PoolSizeFor(db, u))
		}
	})
}

// target says how a pool for (backend, login) reaches its server.
func (st *settings) target(b config.Backend, l *login) pool.Target {
	user, pass := l.user.ServerName(), l.user.Password
	if l.user.ServerPassword != "" {
		pass = l.user.ServerPassword
	}
	if pass == "" {
		pass = l.secret.Plain
	}
	t := pool.Target{
		Host: b.Host, Port: b.Port, Database: l.db.DBName, User: user, Password: pass,
		SSLMode: st.cfg.TLS.BackendMode, SSLFiles: st.cfg.TLS.BackendFiles(), ConnectTimeout: st.cfg.Pool.ConnectTimeout,
	}
	if pass == "" {
		t.Keys = l.keys
	}
	return t
}

func (st *settings) idleTxTimeout() time.Duration { return st.cfg.Pool.IdleTransactionTimeout }

func (st *settings) clientIdleTimeout() time.Duration { return st.cfg.Pool.ClientIdleTimeout }

// idleDeadlines: a client's reads may time out (idle_transaction_timeout
// or client_idle_timeout), so it reads with deadlines of its own.
func (st *settings) idleDeadlines() bool { return st.idleTxTimeout() > 0 || st.clientIdleTimeout() > 0 }
