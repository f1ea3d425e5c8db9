package proxy_test

import (
	"context"
	"fmt"
	"net"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/ai-ninja/pgninja/config"
	"github.com/ai-ninja/pgninja/internal/testbed"
	"github.com/ai-ninja/pgninja/pool"
	"github.com/ai-ninja/pgninja/proxy"
	"github.com/ai-ninja/pgninja/router"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/prometheus/client_golang/prometheus"
)

// harness is a pgninja server running in-process in front of the test
// bed's real primary.
type harness struct {
	env    *testbed.Env
	srv    *proxy.Server
	pools  *pool.Manager
	addr   string
	cfg    *config.Config
	router *router.Router
	reg    *prometheus.Registry
	logs   *lockedBuffer // the proxy's log
}

// startProxy serves a proxy on a free port; extra is YAML appended to the
// base config (it may override pool settings).
func startProxy(t testing.TB, extra string) *harness {
	t.Helper()
	env := testbed.Require(t)
	return startWith(t, env, backendsOf(t, env)+extra)
}

// backendsOf is the backends section with the test bed's primary alone.
func backendsOf(t testing.TB, env *testbed.Env) string {
	t.Helper()
	host, port, err := net.SplitHostPort(env.Primary)
	if err != nil {
		t.Fatal(err)
	}
	return fmt.Sprintf("backends:\n  - name: primary\n    host: %s\n    port: %s\n", host, port)
}

// startWith serves a proxy whose config is the base users plus extra,
// which must list the backends. With routing enabled the health checker
// runs for the test's lifetime.
func startWith(t testing.TB, env *testbed.Env, extra string) *harness {
	t.Helper()
	return startWithDial(t, env, extra, nil)
}

// startWithDial is startWith with the pools' server connections opened by
// dial (nil: pool.Dial), for tests that stand between the proxy and the
// real server.
func startWithDial(t testing.TB, env *testbed.Env, extra string, dial pool.DialFunc) *harness {
	t.Helper()
	return startServer(t, env, extra, dial, serverHooks{})
}

// serverHooks are what the admin console's RELOAD and SHUTDOWN call, when
// not nil.
type serverHooks struct {
	reload   func(*proxy.Server) error
	shutdown func(*proxy.Server)
	// sets are --set overrides, for settings the base config has too
	// (listen).
	sets []string
	// users are more entries of the base config's users list, as YAML.
	users string
}

// startServer is startWithDial whose server has the hooks given.
func startServer(t testing.TB, env *testbed.Env, extra string, dial pool.DialFunc, hooks serverHooks) *harness {
	t.Helper()
	yaml := fmt.Sprintf(`
listen: 127.0.0.1:0
admin_listen: 127.0.0.1:0
users:
  - name: ninja
    password: ninja
  - name: %s
    password: %s
  - name: trusty
    auth: trust
    server_user: ninja
    server_password: ninja
  - name: md5user
    auth: md5
    password: ninja
    server_user: ninja
`, env.SuperUser, env.SuperPass) + hooks.users + extra
	cfg, err := config.Parse([]byte(yaml), hooks.sets, nil)
	if err != nil {
		t.Fatal(err)
	}
	log, logs := testLog(t)
	pools := pool.NewManager(dial)
	reg := prometheus.NewRegistry()
	rt, health, err := router.FromConfig(cfg, log, reg)
	if err != nil {
		t.Fatal(err)
	}
	var srv *proxy.Server
	deps := proxy.Deps{Config: cfg, Pools: pools, Router: rt, Log: log, Registry: reg}
	if hooks.reload != nil {
		deps.Reload = func() error { return hooks.reload(srv) }
	}
	if hooks.shutdown != nil {
		deps.Shutdown = func() { hooks.shutdown(srv) }
	}
	srv, err = proxy.NewServer(deps)
	if err != nil {
		t.Fatal(err)
	}
	if err := srv.Listen(); err != nil {
		t.Fatal(err)
	}
	go func() { _ = srv.Serve() }()
	ctx, cancel := context.WithCancel(context.Background())
	go pools.Run(ctx, 100*time.Millisecond)
	if health != nil {
		go health.Run(ctx)
	}
	t.Cleanup(func() {
		cancel()
		if health != nil {
			health.Close()
		}
		sctx, c2 := context.WithTimeout(context.Background(), 5*time.Second)
		defer c2()
		_ = srv.Shutdown(sctx)
		pools.Close()
	})
	return &harness{env: env, srv: srv, pools: pools, addr: srv.Addr().String(), cfg: cfg, router: rt, reg: reg, logs: logs}
}

func (h *harness) port() int {
	_, p, _ := net.SplitHostPort(h.addr)
	n, _ := strconv.Atoi(p)
	return n
}

// dsn is a connection string to the proxy.
func (h *harness) dsn(user, pass, db string) string {
	return fmt.Sprintf("postgres://%s:%s@%s/%s?sslmode=disable", user, pass, h.addr, db)
}

func (h *harness) connect(t testing.TB, user, pass, db string) *pgx.Conn {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c, err := pgx.Connect(ctx, h.dsn(user, pass, db))
	if err != nil {
		t.Fatalf("connect through proxy: %v", err)
	}
	t.Cleanup(func() { _ = c.Close(context.Background()) })
	return c
}

// connectWith connects as the app user to ai_ninja with extra startup
// settings. The connection is closed when the test ends, if not before.
func (h *harness) connectWith(t testing.TB, ctx context.Context, params map[string]string) (*pgx.Conn, error) {
	t.Helper()
	cfg, err := pgx.ParseConfig(h.dsn("ninja", "ninja", "ai_ninja"))
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range params {
		cfg.RuntimeParams[k] = v
	}
	c, err := pgx.ConnectConfig(ctx, cfg)
	if err == nil {
		t.Cleanup(func() { _ = c.Close(context.Background()) })
	}
	return c, err
}

// clientsAtOnce runs fn for n app-user clients at the same time, each on
// a connection of its own (adjust, if not nil, may change its config).
// An error fn returns fails the test.
func (h *harness) clientsAtOnce(t *testing.T, ctx context.Context, n int, adjust func(*pgx.ConnConfig), fn func(i int, c *pgx.Conn) error) {
	t.Helper()
	var wg sync.WaitGroup
	for i := 0; i < n; i++ {
		wg.Go(func() {
			cfg, err := pgx.ParseConfig(h.dsn("ninja", "ninja", "ai_ninja"))
			if err != nil {
				t.Error(err)
				return
			}
			if adjust != nil {
				adjust(cfg)
			}
			c, err := pgx.ConnectConfig(ctx, cfg)
			if err != nil {
				t.Error(err)
				return
			}
			defer c.Close(ctx)
			if err := fn(i, c); err != nil {
				t.Errorf("client %d: %v", i, err)
			}
		})
	}
	wg.Wait()
}

// ninja connects as the app user to ai_ninja.
func (h *harness) ninja(t testing.TB) *pgx.Conn { return h.connect(t, "ninja", "ninja", "ai_ninja") }

// notices keeps what servers tell the connections it was given to; it is
// safe for the connections' goroutines.
type notices struct {
	mu  sync.Mutex
	got []*pgconn.Notice
}

// take returns the notices since the last take.
func (n *notices) take() []*pgconn.Notice {
	n.mu.Lock()
	defer n.mu.Unlock()
	got := n.got
	n.got = nil
	return got
}

// describeNotices lists notices as "SEVERITY CODE message", for a
// failure message.
func describeNotices(got []*pgconn.Notice) []string {
	var out []string
	for _, x := range got {
		out = append(out, x.Severity+" "+x.Code+" "+x.Message)
	}
	return out
}

// connectNoticed connects to dsn, keeping every notice in n.
func connectNoticed(t testing.TB, dsn string, n *notices) *pgx.Conn {
	t.Helper()
	cfg, err := pgx.ParseConfig(dsn)
	if err != nil {
		t.Fatal(err)
	}
	cfg.OnNotice = func(_ *pgconn.PgConn, x *pgconn.Notice) {
		n.mu.Lock()
		n.got = append(n.got, x)
		n.mu.Unlock()
	}
	c, err := pgx.ConnectConfig(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Close(context.Background()) })
	return c
}

// closedConns is how many server connections the proxy's pools closed.
func closedConns(h *harness) (n uint64) {
	h.pools.Each(func(_ pool.Key, p *pool.Pool) { n += p.Stats().Closed })
	return n
}

// direct connects to the primary as superuser, bypassing the proxy.
func (h *harness) direct(t testing.TB) *pgx.Conn {
	t.Helper()
	c, err := pgx.Connect(context.Background(), fmt.Sprintf("postgres://%s:%s@%s/postgres?sslmode=disable",
		h.env.SuperUser, h.env.SuperPass, h.env.Primary))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Close(context.Background()) })
	return c
}

func ctxT(t testing.TB, d time.Duration) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	t.Cleanup(cancel)
	return ctx
}

type (
	poolKey = pool.Key
	poolT   = *pool.Pool
)
