package proxy_test

import (
	"context"
	"fmt"
	"net"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ai-ninja/pgninja/config"
	"github.com/ai-ninja/pgninja/internal/testbed"
	"github.com/ai-ninja/pgninja/proxy"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgproto3"
)

const consoleUsers = "admin_users: [ninja]\nstats_users: [trusty]\npool:\n  mode: transaction\n"

// console logs in to the admin console; it takes simple queries only.
func (h *harness) console(t *testing.T, user, pass, db string) (*pgx.Conn, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c, err := pgx.Connect(ctx, h.dsn(user, pass, db)+"&default_query_exec_mode=simple_protocol")
	if err == nil {
		t.Cleanup(func() { _ = c.Close(context.Background()) })
	}
	return c, err
}

// consoleRows runs a SHOW and returns its rows as column -> text.
func consoleRows(t *testing.T, c *pgx.Conn, q string) []map[string]string {
	t.Helper()
	rows, err := c.Query(ctxT(t, 10*time.Second), q)
	if err != nil {
		t.Fatalf("%s: %v", q, err)
	}
	defer rows.Close()
	var out []map[string]string
	for rows.Next() {
		m := map[string]string{}
		for i, fd := range rows.FieldDescriptions() {
			m[fd.Name] = string(rows.RawValues()[i])
		}
		out = append(out, m)
	}
	if err := rows.Err(); err != nil {
		t.Fatalf("%s: %v", q, err)
	}
	return out
}

// wantSQLStates runs each query on c and checks the SQLSTATE it fails
// with.
func wantSQLStates(t *testing.T, ctx context.Context, c *pgx.Conn, cases [][2]string) {
	t.Helper()
	for _, tc := range cases {
		if _, err := c.Exec(ctx, tc[0]); sqlstate(err) != tc[1] {
			t.Errorf("%s: %v, want SQLSTATE %s", tc[0], err, tc[1])
		}
	}
}

// execHeld starts q on c and checks that it still waits 300 ms later;
// the channel gives its result once it returns.
func execHeld(t *testing.T, ctx context.Context, c *pgx.Conn, q, why string) <-chan error {
	t.Helper()
	done := make(chan error, 1)
	go func() { _, err := c.Exec(ctx, q); done <- err }()
	select {
	case err := <-done:
		t.Fatalf("%s returned (%v) %s", q, err, why)
	case <-time.After(300 * time.Millisecond):
	}
	return done
}

func rowsWhere(rows []map[string]string, col, val string) []map[string]string {
	var out []map[string]string
	for _, r := range rows {
		if r[col] == val {
			out = append(out, r)
		}
	}
	return out
}

// TestConsoleShowsWhoHoldsWhat checks SHOW CLIENTS, SERVERS and POOLS
// against what a client in a transaction really holds: the backend pid
// it reports itself.
func TestConsoleShowsWhoHoldsWhat(t *testing.T) {
	h := startProxy(t, consoleUsers)
	ctx := ctxT(t, 30*time.Second)
	app := h.ninja(t)
	if _, err := app.Exec(ctx, "begin"); err != nil {
		t.Fatal(err)
	}
	var pid uint32
	if err := app.QueryRow(ctx, "select pg_backend_pid()").Scan(&pid); err != nil {
		t.Fatal(err)
	}
	h.ninja(t) // a second client, logged in, holding nothing

	con, err := h.console(t, "ninja", "ninja", "pgninja")
	if err != nil {
		t.Fatal(err)
	}
	clients := rowsWhere(consoleRows(t, con, "SHOW CLIENTS"), "database", "ai_ninja")
	if len(clients) != 2 {
		t.Fatalf("SHOW CLIENTS: %d ai_ninja clients, want 2: %v", len(clients), clients)
	}
	active := rowsWhere(clients, "state", "active")
	if len(active) != 1 || active[0]["server_pid"] != fmt.Sprint(pid) || active[0]["tx_status"] != "T" ||
		active[0]["backend"] != "primary" || active[0]["pool_mode"] != "transaction" {
		t.Errorf("SHOW CLIENTS: active client %v, want server_pid %d in a transaction on primary", active, pid)
	}
	if n := len(rowsWhere(clients, "state", "idle")); n != 1 {
		t.Errorf("SHOW CLIENTS: %d idle clients, want 1: %v", n, clients)
	}
	if len(rowsWhere(consoleRows(t, con, "show clients;"), "database", "pgninja")) != 1 {
		t.Error("SHOW CLIENTS does not list the console client itself")
	}

	servers := rowsWhere(consoleRows(t, con, "SHOW SERVERS"), "pid", fmt.Sprint(pid))
	if len(servers) != 1 || servers[0]["state"] != "active" || len(active) != 1 ||
		servers[0]["client_pid"] != active[0]["pid"] || servers[0]["database"] != "ai_ninja" {
		t.Errorf("SHOW SERVERS: row of pid %d is %v, want it active for client %v", pid, servers, active)
	}

	pools := rowsWhere(consoleRows(t, con, "SHOW POOLS"), "database", "ai_ninja")
	if len(pools) != 1 {
		t.Fatalf("SHOW POOLS: %v, want one ai_ninja pool", pools)
	}
	p := pools[0]
	if p["user"] != "ninja" || p["backend"] != "primary" || p["cl_active"] != "2" || p["cl_waiting"] != "0" ||
		p["sv_active"] != "1" || p["pool_mode"] != "transaction" {
		t.Errorf("SHOW POOLS: %v, want 2 clients active, 1 server active, transaction mode", p)
	}

	// After the transaction the connection is idle in the pool (it goes
	// back just after the client has its answer).
	if _, err := app.Exec(ctx, "commit"); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 10*time.Second, fmt.Sprintf("SHOW SERVERS to list pid %d idle", pid), func() bool {
		servers = rowsWhere(consoleRows(t, con, "SHOW SERVERS"), "pid", fmt.Sprint(pid))
		return len(servers) == 1 && servers[0]["state"] == "idle" && servers[0]["client_pid"] == ""
	})
	for _, show := range []string{"HELP", "VERSION", "DATABASES", "USERS", "BACKENDS", "LISTS"} {
		if rows := consoleRows(t, con, "show "+show); len(rows) == 0 {
			t.Errorf("SHOW %s: no rows", show)
		}
	}
	lists := consoleRows(t, con, "SHOW LISTS")
	if r := rowsWhere(lists, "list", "used_clients"); len(r) != 1 || r[0]["items"] != "3" {
		t.Errorf("SHOW LISTS used_clients: %v, want 3 (two clients and the console)", r)
	}
}

// TestConsoleRefusesAsPostgreSQLWould covers who may log in, what a
// stats user may run, and bad commands: each an error with its SQLSTATE,
// after which the console keeps answering.
func TestConsoleRefusesAsPostgreSQLWould(t *testing.T) {
	h := startProxy(t, consoleUsers)
	logins := []struct {
		name           string
		user, pass, db string
		state          string // "" logs in
	}{
		{"admin", "ninja", "ninja", "pgninja", ""},
		{"PgBouncer's name", "ninja", "ninja", "pgbouncer", ""},
		{"stats user", "trusty", "", "pgninja", ""},
		{"wrong password", "ninja", "nope", "pgninja", "28P01"},
		{"neither admin nor stats", h.env.SuperUser, h.env.SuperPass, "pgninja", "42501"},
		{"unknown user", "nobody", "x", "pgninja", "28000"},
	}
	for _, tc := range logins {
		t.Run(tc.name, func(t *testing.T) {
			_, err := h.console(t, tc.user, tc.pass, tc.db)
			if got := sqlstate(err); got != tc.state {
				t.Errorf("login: SQLSTATE %q (%v), want %q", got, err, tc.state)
			}
		})
	}

	stats, err := h.console(t, "trusty", "", "pgninja")
	if err != nil {
		t.Fatal(err)
	}
	admin, err := h.console(t, "ninja", "ninja", "pgninja")
	if err != nil {
		t.Fatal(err)
	}
	cmds := []struct {
		name  string
		c     *pgx.Conn
		q     string
		state string
	}{
		{"stats user SHOW", stats, "SHOW POOLS", ""},
		{"stats user RELOAD", stats, "RELOAD", "42501"},
		{"no reload hook", admin, "RELOAD", "0A000"},
		{"unknown SHOW", admin, "SHOW NOTHING", "42601"},
		{"PgBouncer's SHOW with nothing to show", admin, "SHOW dns_hosts", "0A000"},
		{"PgBouncer's SHOW MEM", admin, "SHOW MEM", "0A000"},
		{"unknown command", admin, "SELECT 1", "42601"},
		{"SHOW without a word", admin, "SHOW", "42601"},
		{"lower case", admin, "show version", ""},
	}
	for _, tc := range cmds {
		t.Run(tc.name, func(t *testing.T) {
			_, err := tc.c.Exec(ctxT(t, 10*time.Second), tc.q)
			if got := sqlstate(err); got != tc.state {
				t.Errorf("%s: SQLSTATE %q (%v), want %q", tc.q, got, err, tc.state)
			}
		})
	}
	// The extended protocol is refused until Sync, and the console
	// answers the next query.
	_, err = admin.PgConn().ExecParams(ctxT(t, 10*time.Second), "SHOW POOLS", nil, nil, nil, nil).Close()
	if got := sqlstate(err); got != "0A000" {
		t.Errorf("extended protocol: SQLSTATE %q (%v), want 0A000", got, err)
	}
	if rows := consoleRows(t, admin, "SHOW VERSION"); len(rows) != 1 {
		t.Errorf("SHOW VERSION after a refused extended query: %v", rows)
	}
}

// TestConsoleNameOfARealDatabase: a database configured under the
// console's name is a database, not the console.
func TestConsoleNameOfARealDatabase(t *testing.T) {
	h := startProxy(t, consoleUsers+"databases:\n  pgbouncer:\n    dbname: ai_ninja\n  ai_ninja: {}\n")
	c := h.connect(t, "ninja", "ninja", "pgbouncer")
	var db string
	if err := c.QueryRow(ctxT(t, 10*time.Second), "select current_database()").Scan(&db); err != nil {
		t.Fatal(err)
	}
	if db != "ai_ninja" {
		t.Errorf("database pgbouncer reached %q, want the configured ai_ninja", db)
	}
}

// startReloadable serves the console users' config; RELOAD then reads
// the YAML last stored in the pointer it returns (the test sets it, the
// session running RELOAD reads it).
func startReloadable(t *testing.T, env *testbed.Env) (*harness, *atomic.Pointer[string]) {
	t.Helper()
	next := new(atomic.Pointer[string])
	h := startServer(t, env, backendsOf(t, env)+consoleUsers, nil, serverHooks{reload: func(srv *proxy.Server) error {
		cfg, err := config.Parse([]byte(*next.Load()), nil, nil)
		if err != nil {
			return err
		}
		return srv.Reload(cfg)
	}})
	return h, next
}

// TestConsoleReload: RELOAD applies a valid config, as SIGHUP does, and
// reports a rejected one while the running config stays.
func TestConsoleReload(t *testing.T) {
	env := testbed.Require(t)
	h, next := startReloadable(t, env)
	admin, err := h.console(t, "ninja", "ninja", "pgninja")
	if err != nil {
		t.Fatal(err)
	}
	ctx := ctxT(t, 10*time.Second)
	bad := "pool: {max_size: -1}\n"
	next.Store(&bad)
	_, err = admin.Exec(ctx, "RELOAD")
	if got := sqlstate(err); got != "F0000" {
		t.Fatalf("RELOAD of an invalid config: SQLSTATE %q (%v), want F0000", got, err)
	}
	if rows := rowsWhere(consoleRows(t, admin, "SHOW USERS"), "name", "newbie"); len(rows) != 0 {
		t.Fatalf("a rejected config changed the users: %v", rows)
	}
	// Routing is built at start; a reload cannot turn it on.
	host, port, _ := net.SplitHostPort(env.Replica)
	routed := fmt.Sprintf("%s  - {name: replica, host: %s, port: %s, role: replica}\n"+
		"admin_users: [ninja]\nusers:\n  - {name: ninja, password: ninja}\nrouting: {enabled: true}\n",
		backendsOf(t, env), host, port)
	next.Store(&routed)
	if _, err = admin.Exec(ctx, "RELOAD"); sqlstate(err) != "F0000" || !strings.Contains(err.Error(), "restart") {
		t.Fatalf("RELOAD changing routing: %v, want F0000 saying it needs a restart", err)
	}
	good := fmt.Sprintf("%sadmin_users: [ninja]\nusers:\n  - {name: ninja, password: ninja}\n  - {name: newbie, password: pw, pool_size: 3}\n",
		backendsOf(t, env))
	next.Store(&good)
	if _, err := admin.Exec(ctx, "RELOAD"); err != nil {
		t.Fatalf("RELOAD: %v", err)
	}
	rows := rowsWhere(consoleRows(t, admin, "SHOW USERS"), "name", "newbie")
	if len(rows) != 1 || rows[0]["pool_size"] != strconv.Itoa(3) {
		t.Errorf("SHOW USERS after RELOAD: %v, want newbie with pool_size 3", rows)
	}
}

// TestConsolePauseResume: PAUSE returns once the transaction in flight
// has ended, closes the idle server connections and holds the next
// request, which RESUME lets run; a cancelled PAUSE resumes.
func TestConsolePauseResume(t *testing.T) {
	h := startProxy(t, consoleUsers+"databases: {ai_ninja: {}}\n")
	ctx := ctxT(t, 60*time.Second)
	inTxn, waiter := h.ninja(t), h.ninja(t)
	admin, err := h.console(t, "ninja", "ninja", "pgninja")
	if err != nil {
		t.Fatal(err)
	}
	for _, q := range []string{"begin", "select 1"} {
		if _, err := inTxn.Exec(ctx, q); err != nil {
			t.Fatal(err)
		}
	}
	wantSQLStates(t, ctx, admin, [][2]string{
		{"PAUSE nosuchdb", "3D000"},
		{"RESUME", "55000"},
		{"PAUSE a b", "42601"},
	})

	paused := execHeld(t, ctx, admin, "PAUSE", "while a transaction was open")
	if _, err := inTxn.Exec(ctx, "commit"); err != nil {
		t.Fatal(err)
	}
	if err := <-paused; err != nil {
		t.Fatalf("PAUSE: %v", err)
	}

	answered := make(chan error, 1)
	go func() {
		var one int
		err := waiter.QueryRow(ctx, "select 1").Scan(&one)
		answered <- err
	}()
	other, err := h.console(t, "ninja", "ninja", "pgbouncer")
	if err != nil {
		t.Fatal(err)
	}
	waitFor(t, 10*time.Second, "the client held by PAUSE", func() bool {
		return len(rowsWhere(rowsWhere(consoleRows(t, other, "SHOW CLIENTS"), "database", "ai_ninja"), "state", "paused")) == 1
	})
	if idle := rowsWhere(consoleRows(t, other, "SHOW SERVERS"), "database", "ai_ninja"); len(idle) != 0 {
		t.Errorf("server connections left open by PAUSE: %v", idle)
	}
	if _, err := other.Exec(ctx, "PAUSE"); sqlstate(err) != "55000" {
		t.Errorf("second PAUSE: %v, want 55000", err)
	}
	if _, err := other.Exec(ctx, "RESUME"); err != nil {
		t.Fatalf("RESUME: %v", err)
	}
	if err := <-answered; err != nil {
		t.Fatalf("the held request after RESUME: %v", err)
	}

	// A PAUSE cancelled while it waits (psql's Ctrl-C) resumes.
	for _, q := range []string{"begin", "select 1"} {
		if _, err := inTxn.Exec(ctx, q); err != nil {
			t.Fatal(err)
		}
	}
	go func() {
		time.Sleep(300 * time.Millisecond)
		_ = admin.PgConn().CancelRequest(ctx)
	}()
	_, err = admin.Exec(ctx, "PAUSE")
	if sqlstate(err) != "57014" {
		t.Errorf("cancelled PAUSE: %v, want 57014", err)
	}
	if _, err := inTxn.Exec(ctx, "commit"); err != nil {
		t.Fatal(err)
	}
	if _, err := waiter.Exec(ctx, "select 1"); err != nil {
		t.Errorf("a request after the cancelled PAUSE: %v", err)
	}
	if _, err := other.Exec(ctx, "RESUME"); sqlstate(err) != "55000" {
		t.Errorf("RESUME after a cancelled PAUSE: %v, want 55000 (not paused)", err)
	}
}

// TestConsolePauseOutlastsAcquireTimeout: a request held longer than
// acquire_timeout gets 53300, as in a full pool, and never runs.
func TestConsolePauseOutlastsAcquireTimeout(t *testing.T) {
	h := startProxy(t, "admin_users: [ninja]\ndatabases: {ai_ninja: {}}\npool:\n  mode: transaction\n  acquire_timeout: 500ms\n")
	ctx := ctxT(t, 30*time.Second)
	c := h.ninja(t)
	admin, err := h.console(t, "ninja", "ninja", "pgninja")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := admin.Exec(ctx, "PAUSE ai_ninja"); err != nil {
		t.Fatal(err)
	}
	if rows := rowsWhere(consoleRows(t, admin, "SHOW DATABASES"), "paused", "true"); len(rows) != 1 {
		t.Errorf("SHOW DATABASES while ai_ninja is paused: %v", rows)
	}
	if _, err := c.Exec(ctx, "create temp table never_made (i int)"); sqlstate(err) != "53300" {
		t.Fatalf("request held past acquire_timeout: %v, want 53300", err)
	}
	if _, err := admin.Exec(ctx, "RESUME ai_ninja"); err != nil {
		t.Fatal(err)
	}
	var n int
	if err := c.QueryRow(ctx, "select count(*) from pg_class where relname = 'never_made'").Scan(&n); err != nil || n != 0 {
		t.Errorf("after RESUME: %d tables never_made (%v), want 0", n, err)
	}
}

// TestConsoleStatsCountWhatRan: SHOW STATS counts the transactions,
// queries and server assignments a client's statements made, and keeps
// them after it leaves; the console's own traffic counts nowhere.
func TestConsoleStatsCountWhatRan(t *testing.T) {
	h := startProxy(t, consoleUsers)
	ctx := ctxT(t, 30*time.Second)
	c, err := pgx.Connect(ctx, h.dsn("ninja", "ninja", "ai_ninja"))
	if err != nil {
		t.Fatal(err)
	}
	// Five autocommit statements, then one transaction whose BEGIN the
	// proxy holds back and sends with its SELECT: 6 transactions, 7
	// answered requests, 6 server connections lent.
	for i := 0; i < 5; i++ {
		if _, err := c.Exec(ctx, "select pg_sleep(0.002)"); err != nil {
			t.Fatal(err)
		}
	}
	for _, q := range []string{"begin", "select 1", "commit"} {
		if _, err := c.Exec(ctx, q); err != nil {
			t.Fatal(err)
		}
	}
	if err := c.Close(ctx); err != nil {
		t.Fatal(err)
	}
	admin, err := h.console(t, "ninja", "ninja", "pgninja")
	if err != nil {
		t.Fatal(err)
	}
	var rows []map[string]string
	waitFor(t, 10*time.Second, "the client's counts", func() bool {
		rows = consoleRows(t, admin, "SHOW STATS")
		return len(rows) == 1 && rows[0]["total_xact_count"] == "6"
	})
	r := rows[0]
	if r["database"] != "ai_ninja" || r["total_query_count"] != "7" || r["total_server_assignment_count"] != "6" {
		t.Errorf("SHOW STATS: %v, want ai_ninja with 7 queries and 6 assignments", r)
	}
	for _, col := range []string{"total_received", "total_sent", "total_xact_time", "total_query_time"} {
		if n, err := strconv.ParseUint(r[col], 10, 64); err != nil || n == 0 {
			t.Errorf("SHOW STATS %s = %q, want > 0", col, r[col])
		}
	}
	// Five pg_sleep(0.002) alone took 10 ms of query time.
	if n, _ := strconv.ParseUint(r["total_query_time"], 10, 64); n < 10000 {
		t.Errorf("total_query_time %d µs, want at least the 10,000 slept", n)
	}
	if _, ok := rows[0]["avg_query_time"]; !ok {
		t.Error("SHOW STATS has no averages")
	}
	if cols := consoleRows(t, admin, "SHOW STATS_TOTALS"); len(cols) != 1 || cols[0]["xact_count"] != "6" || cols[0]["avg_xact_count"] != "" {
		t.Errorf("SHOW STATS_TOTALS: %v, want 6 transactions and no averages", cols)
	}
	// The admin HTTP surface's /stats and /show/stats, the console's
	// table as JSON, say the same, with the numbers as numbers.
	if rows, ok := h.srv.Show("stats"); !ok || len(rows) != 1 || rows[0]["database"] != "ai_ninja" ||
		rows[0]["total_xact_count"] != int64(6) || rows[0]["total_query_count"] != int64(7) ||
		rows[0]["total_server_assignment_count"] != int64(6) || fmt.Sprint(rows[0]["total_sent"]) != r["total_sent"] {
		t.Errorf("Show(stats) = %v, %v; want SHOW STATS's %v", rows, ok, r)
	}
	if _, ok := h.srv.Show("nonsense"); ok {
		t.Error("Show(nonsense) found a table")
	}
	// With its only client gone, the pool still says its mode.
	waitFor(t, 10*time.Second, "SHOW POOLS with no client to give transaction mode", func() bool {
		pools := rowsWhere(consoleRows(t, admin, "SHOW POOLS"), "database", "ai_ninja")
		return len(pools) == 1 && pools[0]["pool_mode"] == "transaction" && pools[0]["cl_active"] == "0"
	})
	// The same totals on /metrics.
	if got := counterValue(t, h.reg, "pgninja_database_transactions_total"); got != 6 {
		t.Errorf("pgninja_database_transactions_total = %v, want 6", got)
	}
}

// TestConsoleConfigHidesPasswords: SHOW CONFIG lists the running
// settings by the keys --set takes, and no password.
func TestConsoleConfigHidesPasswords(t *testing.T) {
	h := startProxy(t, consoleUsers)
	admin, err := h.console(t, "ninja", "ninja", "pgninja")
	if err != nil {
		t.Fatal(err)
	}
	cfg := map[string]string{}
	for _, r := range consoleRows(t, admin, "SHOW CONFIG") {
		cfg[r["key"]] = r["value"]
	}
	if cfg["pool.mode"] != "transaction" || cfg["admin_users[0]"] != "ninja" {
		t.Errorf("SHOW CONFIG: pool.mode %q, admin_users[0] %q", cfg["pool.mode"], cfg["admin_users[0]"])
	}
	for k, v := range cfg {
		if v == "ninja" && k != "admin_users[0]" && !strings.HasSuffix(k, ".name") && !strings.HasSuffix(k, "server_user") {
			t.Errorf("SHOW CONFIG %s shows the password", k)
		}
	}
	if cfg["users[0].password"] != "(set)" {
		t.Errorf("users[0].password shows %q, want (set)", cfg["users[0].password"])
	}
}

// TestConsolePauseEndsAtShutdown: a shutdown ends a PAUSE still waiting
// and the requests it holds, rather than wait for a RESUME.
func TestConsolePauseEndsAtShutdown(t *testing.T) {
	h := startProxy(t, consoleUsers)
	ctx := ctxT(t, 60*time.Second)
	inTxn, held := h.ninja(t), h.ninja(t)
	admin, err := h.console(t, "ninja", "ninja", "pgninja")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := admin.Exec(ctx, "PAUSE"); err != nil {
		t.Fatal(err)
	}
	heldErr := make(chan error, 1)
	go func() { _, err := held.Exec(ctx, "select 1"); heldErr <- err }()
	waitFor(t, 10*time.Second, "the request held by PAUSE", func() bool {
		return len(rowsWhere(consoleRows(t, admin, "SHOW CLIENTS"), "state", "paused")) == 1
	})
	if _, err := admin.Exec(ctx, "RESUME"); err != nil {
		t.Fatal(err)
	}
	if err := <-heldErr; err != nil {
		t.Fatal(err)
	}
	// Again, with a PAUSE still waiting for an open transaction.
	for _, q := range []string{"begin", "select 1"} {
		if _, err := inTxn.Exec(ctx, q); err != nil {
			t.Fatal(err)
		}
	}
	pauseErr := make(chan error, 1)
	go func() { _, err := admin.Exec(ctx, "PAUSE"); pauseErr <- err }()
	waitFor(t, 10*time.Second, "PAUSE to begin", func() bool {
		_, err := held.Exec(ctxT(t, 100*time.Millisecond), "select 1")
		return err != nil // held (and cancelled): the pause is on
	})
	go func() { _, err := held.Exec(ctx, "select 1"); heldErr <- err }()

	sctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	start := time.Now()
	_ = h.srv.Shutdown(sctx)
	if d := time.Since(start); d > 10*time.Second {
		t.Errorf("shutdown took %v with a PAUSE on", d)
	}
	for name, ch := range map[string]chan error{"PAUSE": pauseErr, "held request": heldErr} {
		select {
		case err := <-ch:
			if err == nil {
				t.Errorf("%s succeeded through a shutdown", name)
			}
		case <-time.After(10 * time.Second):
			t.Errorf("%s still waits after shutdown", name)
		}
	}
}

// TestConsoleReloadMovesABackend: after a RELOAD that points a backend at
// another server, the next transaction runs there, not on a pooled
// connection to the old one.
func TestConsoleReloadMovesABackend(t *testing.T) {
	env := testbed.Require(t)
	h, next := startReloadable(t, env)
	ctx := ctxT(t, 30*time.Second)
	c := h.ninja(t)
	var standby bool
	if err := c.QueryRow(ctx, "select pg_is_in_recovery()").Scan(&standby); err != nil || standby {
		t.Fatalf("before the move: in recovery %v (%v), want the primary", standby, err)
	}
	host, port, err := net.SplitHostPort(env.Replica)
	if err != nil {
		t.Fatal(err)
	}
	moved := fmt.Sprintf("backends:\n  - name: primary\n    host: %s\n    port: %s\n%susers:\n  - {name: ninja, password: ninja}\n",
		host, port, consoleUsers)
	next.Store(&moved)
	admin, err := h.console(t, "ninja", "ninja", "pgninja")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := admin.Exec(ctx, "RELOAD"); err != nil {
		t.Fatalf("RELOAD: %v", err)
	}
	if err := c.QueryRow(ctx, "select pg_is_in_recovery()").Scan(&standby); err != nil || !standby {
		t.Errorf("after the move: in recovery %v (%v), want the server the backend now names", standby, err)
	}
}

// TestConsoleReconnect: RECONNECT closes the idle server connections at
// once and a lent one when its transaction ends; the clients carry on,
// on new ones.
func TestConsoleReconnect(t *testing.T) {
	h := startProxy(t, consoleUsers)
	ctx := ctxT(t, 30*time.Second)
	idle, inTxn := h.ninja(t), h.ninja(t)
	pid := func(c *pgx.Conn) uint32 {
		t.Helper()
		var p uint32
		if err := c.QueryRow(ctx, "select pg_backend_pid()").Scan(&p); err != nil {
			t.Fatal(err)
		}
		return p
	}
	if _, err := inTxn.Exec(ctx, "begin"); err != nil {
		t.Fatal(err)
	}
	lentPID := pid(inTxn)
	idlePID := pid(idle) // its connection goes back to the pool
	admin, err := h.console(t, "ninja", "ninja", "pgninja")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := admin.Exec(ctx, "RECONNECT ai_ninja"); err != nil {
		t.Fatal(err)
	}
	servers := rowsWhere(consoleRows(t, admin, "SHOW SERVERS"), "database", "ai_ninja")
	if len(servers) != 1 || servers[0]["pid"] != fmt.Sprint(lentPID) {
		t.Errorf("after RECONNECT: servers %v, want only the lent one (pid %d)", servers, lentPID)
	}
	if p := pid(inTxn); p != lentPID {
		t.Errorf("the open transaction moved from pid %d to %d", lentPID, p)
	}
	if _, err := inTxn.Exec(ctx, "commit"); err != nil {
		t.Fatal(err)
	}
	for _, c := range []*pgx.Conn{idle, inTxn} {
		if p := pid(c); p == idlePID || p == lentPID {
			t.Errorf("after RECONNECT a client ran on pid %d, an old connection", p)
		}
	}
}

// TestConsoleRawProtocol: a FunctionCall is refused at once (no Sync
// follows one), COPY messages outside COPY are ignored, and the console
// goes on answering.
func TestConsoleRawProtocol(t *testing.T) {
	h := startProxy(t, consoleUsers)
	fe := loginRawTo(t, rawConn(t, h), "trusty", "pgninja")
	fe.Send(&pgproto3.FunctionCall{Function: 1574})
	msgs := expectMessages(t, fe, "ErrorResponse", "ReadyForQuery")
	if e := msgs[0].(*pgproto3.ErrorResponse); e.Code != "0A000" {
		t.Errorf("FunctionCall: %s %s, want 0A000", e.Code, e.Message)
	}
	fe.Send(&pgproto3.CopyData{Data: []byte("x")})
	fe.Send(&pgproto3.CopyDone{})
	fe.Send(&pgproto3.Query{String: "SHOW VERSION"})
	expectMessages(t, fe, "RowDescription", "DataRow", "CommandComplete", "ReadyForQuery")
}
