package proxy

import (
	"context"
	"sync"
	"time"

	"github.com/ai-ninja/pgninja/config"
	"github.com/ai-ninja/pgninja/internal/auth"
	"github.com/ai-ninja/pgninja/internal/pgerr"
	"github.com/ai-ninja/pgninja/pool"
	"github.com/jackc/pgx/v5/pgconn"
)

// authQueries runs auth.query (PgBouncer's auth_query) for users neither
// the config nor the users file knows. Each server database keeps one
// connection as auth.query_user, opened at the first lookup and reused:
// a connection per login would cost connect-per-transaction clients a
// server login each. Lookups on one database take turns on it; a
// connection that fails is dropped and the next lookup opens another.
type authQueries struct {
	mu    sync.Mutex
	conns map[string]*authConn // by server database
}

type authConn struct {
	mu     sync.Mutex
	target pool.Target // what it logged in with: a reload may change it
	pc     *pgconn.PgConn
}

// authQueryTimeout bounds one lookup, connecting included.
const authQueryTimeout = 10 * time.Second

// lookup finds user by auth.query in server database db. ok is false
// when the query returns no row. A NULL password is a user that cannot
// log in with one, as in PostgreSQL.
func (aq *authQueries) lookup(st *settings, db, user string) (u config.User, secret auth.Secret, ok bool, err error) {
	cfg := st.cfg
	if cfg.Auth.QueryDatabase != "" {
		db = cfg.Auth.QueryDatabase
	}
	runner, _ := cfg.User(cfg.Auth.QueryUser) // validated
	_, runnerSecret, _ := st.resolveUser(runner.Name)
	t := st.target(cfg.Primary(), &login{user: runner, db: config.Database{DBName: db}, secret: runnerSecret})

	aq.mu.Lock()
	if aq.conns == nil {
		aq.conns = map[string]*authConn{}
	}
	ac := aq.conns[db]
	if ac == nil {
		ac = &authConn{}
		aq.conns[db] = ac
	}
	aq.mu.Unlock()

	ctx, cancel := context.WithTimeout(context.Background(), authQueryTimeout)
	defer cancel()
	ac.mu.Lock()
	defer ac.mu.Unlock()
	if ac.pc != nil && ac.target != t {
		_ = ac.pc.Close(ctx)
		ac.pc = nil
	}
	if ac.pc == nil {
		pc, err := pool.Connect(ctx, t, "pgninja-auth-query")
		if err != nil {
			return u, secret, false, lookupFailed(user, err)
		}
		ac.pc, ac.target = pc, t
	}
	res := ac.pc.ExecParams(ctx, cfg.Auth.Query, [][]byte{[]byte(user)}, nil, nil, nil).Read()
	if res.Err != nil {
		if ac.pc.IsClosed() || pgerr.SQLState(res.Err) == "" {
			_ = ac.pc.Close(ctx)
			ac.pc = nil
		}
		return u, secret, false, lookupFailed(user, res.Err)
	}
	if len(res.Rows) == 0 {
		return u, secret, false, nil
	}
	if len(res.Rows[0]) < 2 {
		return u, secret, false, lookupFailed(user, errAuthQueryShape)
	}
	u = config.User{Name: user}
	if pw := res.Rows[0][1]; pw != nil {
		if secret, err = auth.ParseSecret(string(pw)); err != nil {
			return u, secret, false, lookupFailed(user, err)
		}
	}
	return u, secret, true, nil
}

var errAuthQueryShape = pgerr.New(pgerr.ConfigFileError, "auth.query must return the user name and its password")

// lookupFailed keeps the client out, saying why, when the query cannot
// be run: 08006 as for a server that cannot be reached, the cause in the
// detail.
func lookupFailed(user string, cause error) error {
	return pgerr.Wrap(cause, pgerr.SeverityFatal, pgerr.ConnectionFailure,
		"pgninja: could not look up user %q with auth.query", user).WithDetail(cause.Error())
}

// close ends the lookups' connections, when the server stops.
func (aq *authQueries) close() {
	aq.mu.Lock()
	defer aq.mu.Unlock()
	for _, ac := range aq.conns {
		ac.mu.Lock()
		if ac.pc != nil {
			_ = ac.pc.Close(context.Background())
			ac.pc = nil
		}
		ac.mu.Unlock()
	}
}
