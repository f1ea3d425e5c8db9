package proxy

import (
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"net"
	"time"

	"github.com/ai-ninja/pgninja/config"
	"github.com/ai-ninja/pgninja/internal/auth"
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
	if cfg.TLS.CertFile != "" {
		cert, err := tls.LoadX509KeyPair(cfg.TLS.CertFile, cfg.TLS.KeyFile)
		if err != nil {
			return nil, fmt.Errorf("tls: %w", err)
		}
		st.tls = &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}
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
	user     config.User
	db       config.Database
	dbName   string // as the client asked
	mode     string
	method   string
	secret   auth.Secret
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

// poolOf returns the pool k, made or updated with st's options for a
// pool of size connections, under its database's and user's caps.
func (srv *Server) poolOf(st *settings, k pool.Key, t pool.Target, size int) *pool.Pool {
	limits := srv.pools.Limits(k, st.cfg.MaxDBConnectionsFor(k.Database), st.cfg.MaxUserConnectionsFor(k.User))
	return srv.pools.Get(k, t, st.poolOptions(size, limits))
}

// resizePools gives the pools clients are using now the pool settings
// of st (size, reserve, timeouts), as their next login would: a pool_size
// raised on the console or in the file helps the clients already queued,
// not only those yet to connect. A pool's size comes from its clients'
// database and user entries; pools nobody is logged in to wait for their
// next login.
func (srv *Server) resizePools(st *settings) {
	type dbUser struct{ db, user string }
	homes := map[*pool.Pool]dbUser{}
	srv.pools.Each(func(k pool.Key, p *pool.Pool) { homes[p] = dbUser{k.Database, k.User} })
	sizes := map[dbUser]int{}
	for _, sess := range srv.sessionList() {
		sess.mu.Lock()
		l, home := sess.l, sess.pool
		sess.mu.Unlock()
		du, ok := homes[home]
		if l == nil || !ok {
			continue // logging in, or the console
		}
		db, dbOK := st.cfg.Database(l.dbName)
		u, _, userOK := st.resolveUser(l.user.Name)
		if dbOK && userOK {
			sizes[du] = st.cfg.PoolSizeFor(db, u)
		}
	}
	// Replicas' pools serve the same server database and user.
	srv.pools.Each(func(k pool.Key, p *pool.Pool) {
		if size, ok := sizes[dbUser{k.Database, k.User}]; ok {
			srv.poolOf(st, k, p.Target(), size)
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
	return pool.Target{
		Host: b.Host, Port: b.Port, Database: l.db.DBName, User: user, Password: pass,
		SSLMode: st.cfg.TLS.BackendMode, ConnectTimeout: st.cfg.Pool.ConnectTimeout,
	}
}

func (st *settings) idleTxTimeout() time.Duration { return st.cfg.Pool.IdleTransactionTimeout }

func (st *settings) clientIdleTimeout() time.Duration { return st.cfg.Pool.ClientIdleTimeout }

// idleDeadlines: a client's reads may time out (idle_transaction_timeout
// or client_idle_timeout), so it reads with deadlines of its own.
func (st *settings) idleDeadlines() bool { return st.idleTxTimeout() > 0 || st.clientIdleTimeout() > 0 }
