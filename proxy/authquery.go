package proxy

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/ai-ninja/pgninja/config"
	"github.com/ai-ninja/pgninja/internal/auth"
	"github.com/ai-ninja/pgninja/internal/pgerr"
	"github.com/ai-ninja/pgninja/pool"
	"github.com/jackc/pgx/v5/pgconn"
)

// authQueries runs auth.query (PgBouncer's auth_query) for users neither
// the config nor the users file knows. Each server database keeps up to
// authQueryConns connections as auth.query_user, opened as lookups need
// them and reused: a connection per login would cost connect-per-
// transaction clients a server login each, and a single shared one would
// have one slow lookup (a lock, a hung server) hold up every login behind
// it. A connection that fails is dropped and a later lookup opens another.
type authQueries struct {
	mu     sync.Mutex
	dbs    map[string]*authDB // by server database
	closed bool
}

// authDB is one server database's lookup connections.
type authDB struct {
	// slots holds a token per lookup running on the database.
	slots chan struct{}
	mu    sync.Mutex
	idle  []authConn
}

type authConn struct {
	target pool.Target // what it logged in with: a reload may change it
	pc     *pgconn.PgConn
}

// authQueryConns is the most lookups that run at once on one server
// database; more wait for one to end.
const authQueryConns = 4

// authQueryTimeout bounds one lookup, its wait and connecting included.
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

	ctx, cancel := context.WithTimeout(context.Background(), authQueryTimeout)
	defer cancel()
	ad := aq.database(db)
	select {
	case ad.slots <- struct{}{}:
	case <-ctx.Done():
		return u, secret, false, lookupFailed(user, errAuthQueryBusy)
	}
	defer func() { <-ad.slots }()
	rows, err := aq.query(ctx, ad, t, cfg.Auth.Query, user)
	if err != nil {
		return u, secret, false, lookupFailed(user, err)
	}
	if len(rows) == 0 {
		return u, secret, false, nil
	}
	if len(rows[0]) < 2 {
		return u, secret, false, lookupFailed(user, errAuthQueryShape)
	}
	u = config.User{Name: user}
	if pw := rows[0][1]; pw != nil {
		if secret, err = auth.ParseSecret(string(pw)); err != nil {
			return u, secret, false, lookupFailed(user, err)
		}
	}
	return u, secret, true, nil
}

// query runs the lookup on an idle connection of ad, or a new one. A
// reused connection that turns out dead (its server restarted, or ended
// it, while it sat idle) is dropped and the lookup, a read, runs on the
// next: otherwise each idle connection a restart left behind would fail
// one login.
func (aq *authQueries) query(ctx context.Context, ad *authDB, t pool.Target, sql, user string) ([][][]byte, error) {
	for {
		ac := ad.take(ctx, t)
		reused := ac.pc != nil
		if !reused {
			pc, err := pool.Connect(ctx, t, "pgninja-auth-query")
			if err != nil {
				return nil, err
			}
			ac = authConn{target: t, pc: pc}
		}
		res := ac.pc.ExecParams(ctx, sql, [][]byte{[]byte(user)}, nil, nil, nil).Read()
		if res.Err == nil || !ac.pc.IsClosed() && pgerr.SQLState(res.Err) != "" {
			// Answered, or refused by a server that goes on serving.
			aq.put(ad, ac)
			return res.Rows, res.Err
		}
		_ = ac.pc.Close(ctx)
		if !reused || ctx.Err() != nil {
			return nil, res.Err
		}
	}
}

func (aq *authQueries) database(db string) *authDB {
	aq.mu.Lock()
	defer aq.mu.Unlock()
	if aq.dbs == nil {
		aq.dbs = map[string]*authDB{}
	}
	ad := aq.dbs[db]
	if ad == nil {
		ad = &authDB{slots: make(chan struct{}, authQueryConns)}
		aq.dbs[db] = ad
	}
	return ad
}

// take gives the most recently used idle connection (so that a quiet
// proxy keeps using one), closing those made for another target; with
// none it returns an empty authConn.
func (ad *authDB) take(ctx context.Context, t pool.Target) authConn {
	ad.mu.Lock()
	defer ad.mu.Unlock()
	for n := len(ad.idle); n > 0; n = len(ad.idle) {
		ac := ad.idle[n-1]
		ad.idle = ad.idle[:n-1]
		if ac.target == t {
			return ac
		}
		_ = ac.pc.Close(ctx)
	}
	return authConn{}
}

// put keeps a connection for the next lookup, unless the server stopped.
func (aq *authQueries) put(ad *authDB, ac authConn) {
	aq.mu.Lock()
	defer aq.mu.Unlock()
	if aq.closed {
		_ = ac.pc.Close(context.Background())
		return
	}
	ad.mu.Lock()
	ad.idle = append(ad.idle, ac)
	ad.mu.Unlock()
}

var errAuthQueryBusy = fmt.Errorf("all %d auth.query connections stayed busy for %v", authQueryConns, authQueryTimeout)

var errAuthQueryShape = pgerr.New(pgerr.ConfigFileError, "auth.query must return the user name and its password")

// lookupFailed keeps the client out, saying why, when the query cannot
// be run: 08006 as for a server that cannot be reached, the cause in the
// detail.
func lookupFailed(user string, cause error) error {
	return pgerr.Wrap(cause, pgerr.SeverityFatal, pgerr.ConnectionFailure,
		"pgninja: could not look up user %q with auth.query", user).WithDetail(cause.Error())
}

// close ends the lookups' connections, when the server stops; those in
// use are closed as their lookups end.
func (aq *authQueries) close() {
	aq.mu.Lock()
	defer aq.mu.Unlock()
	aq.closed = true
	for _, ad := range aq.dbs {
		ad.mu.Lock()
		for _, ac := range ad.idle {
			_ = ac.pc.Close(context.Background())
		}
		ad.idle = nil
		ad.mu.Unlock()
	}
}
