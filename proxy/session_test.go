package proxy_test

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"os/exec"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgproto3"
)

func sqlstate(err error) string {
	var pe *pgconn.PgError
	if errors.As(err, &pe) {
		return pe.Code
	}
	return ""
}

func TestLoginErrors(t *testing.T) {
	h := startProxy(t, "")
	tests := []struct {
		name, user, pass, db, code, msg string
	}{
		{"wrong password", "ninja", "nope", "ai_ninja", "28P01", `password authentication failed for user "ninja"`},
		{"unknown user", "nobody", "x", "ai_ninja", "28000", `role "nobody" does not exist`},
		{"unknown database on server", "ninja", "ninja", "no_such_db", "3D000", `database "no_such_db" does not exist`},
		{"md5 wrong password", "md5user", "nope", "ai_ninja", "28P01", `password authentication failed for user "md5user"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := pgx.Connect(ctxT(t, 10*time.Second), h.dsn(tt.user, tt.pass, tt.db))
			if got := sqlstate(err); got != tt.code {
				t.Fatalf("want SQLSTATE %s, got %v", tt.code, err)
			}
			// PostgreSQL's wording: drivers' tests and scripts match on it.
			var pe *pgconn.PgError
			if errors.As(err, &pe); pe.Message != tt.msg {
				t.Fatalf("message %q, want %q", pe.Message, tt.msg)
			}
			// And the operator hears of it, as from PostgreSQL (just
			// after the client does).
			want := fmt.Sprintf(`level=WARN msg="login failed" user=%s database=%s remote=127.0.0.1:`, tt.user, tt.db)
			waitFor(t, 5*time.Second, want, func() bool { return strings.Contains(h.logs.String(), want) })
		})
	}
	for _, user := range []string{"trusty", "md5user"} {
		pass := map[string]string{"trusty": "anything", "md5user": "ninja"}[user]
		c := h.connect(t, user, pass, "ai_ninja")
		var who string
		if err := c.QueryRow(ctxT(t, 5*time.Second), "select current_user").Scan(&who); err != nil || who != "ninja" {
			t.Fatalf("%s: %q %v", user, who, err)
		}
	}
}

// TestConnectionLogging: log_connections and log_disconnections log a
// line per client login and end.
func TestConnectionLogging(t *testing.T) {
	h := startProxy(t, "log_connections: true\nlog_disconnections: true\n")
	c := h.ninja(t)
	if err := c.Close(ctxT(t, 5*time.Second)); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 5*time.Second, "the logout line", func() bool {
		return strings.Contains(h.logs.String(), "msg=logout user=ninja database=ai_ninja remote=127.0.0.1:")
	})
	if !strings.Contains(h.logs.String(), "msg=login user=ninja database=ai_ninja remote=127.0.0.1:") {
		t.Fatalf("no login line in:\n%s", h.logs.String())
	}
}

func TestUnknownDatabaseInConfig(t *testing.T) {
	h := startProxy(t, "databases:\n  ai_ninja: {}\n")
	_, err := pgx.Connect(ctxT(t, 10*time.Second), h.dsn("ninja", "ninja", "elsewhere"))
	if sqlstate(err) != "3D000" {
		t.Fatalf("want 3D000, got %v", err)
	}
}

func TestNotifyInSessionMode(t *testing.T) {
	h := startProxy(t, "")
	listener := h.ninja(t)
	ctx := ctxT(t, 10*time.Second)
	if _, err := listener.Exec(ctx, "listen ninja_events"); err != nil {
		t.Fatal(err)
	}
	sender := h.ninja(t)
	if _, err := sender.Exec(ctx, "select pg_notify('ninja_events', 'hello')"); err != nil {
		t.Fatal(err)
	}
	// The listener is idle: the notification must arrive without it
	// sending anything.
	n, err := listener.WaitForNotification(ctx)
	if err != nil || n.Channel != "ninja_events" || n.Payload != "hello" {
		t.Fatalf("notification: %+v %v", n, err)
	}
}

func TestCancelPgSleep(t *testing.T) {
	h := startProxy(t, "")
	conn := h.ninja(t)
	go func() {
		time.Sleep(300 * time.Millisecond)
		// CancelRequest goes over a new connection to the proxy, which
		// must find the server connection running this client's query.
		_ = conn.PgConn().CancelRequest(context.Background())
	}()
	start := time.Now()
	_, err := conn.Exec(context.Background(), "select pg_sleep(10)")
	elapsed := time.Since(start)
	if sqlstate(err) != "57014" {
		t.Fatalf("want 57014 query_canceled, got %v", err)
	}
	if elapsed > time.Second+300*time.Millisecond {
		t.Fatalf("cancel took %v", elapsed)
	}
	// The session goes on.
	if err := conn.QueryRow(ctxT(t, 5*time.Second), "select 1").Scan(new(int)); err != nil {
		t.Fatal(err)
	}
}

func TestPsqlThroughProxy(t *testing.T) {
	h := startProxy(t, "")
	psql, err := exec.LookPath("psql")
	if err != nil {
		t.Fatal("psql not installed: the test bed installs postgresql-client")
	}
	cmd := exec.Command(psql, "-X", "-At", "-h", "127.0.0.1", "-p", strconv.Itoa(h.port()), "-U", "ninja", "-d", "ai_ninja",
		"-c", "select 40 + 2", "-c", "select current_setting('application_name')")
	cmd.Env = append(cmd.Environ(), "PGPASSWORD=ninja", "PGSSLMODE=prefer")
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("psql: %v\n%s", err, out)
	}
	if got := strings.TrimSpace(string(out)); got != "42\npsql" {
		t.Fatalf("psql printed %q", got)
	}
}

// rawConn opens a TCP connection to the proxy for hand-made bytes.
func rawConn(t *testing.T, h *harness) net.Conn {
	c, err := net.DialTimeout("tcp", h.addr, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	_ = c.SetDeadline(time.Now().Add(10 * time.Second))
	return c
}

// readError reads backend messages until an ErrorResponse and checks that
// the connection is then closed.
func readError(t *testing.T, c net.Conn) *pgproto3.ErrorResponse {
	t.Helper()
	fe := pgproto3.NewFrontend(c, c)
	for {
		msg, err := fe.Receive()
		if err != nil {
			t.Fatalf("no ErrorResponse before close: %v", err)
		}
		if e, ok := msg.(*pgproto3.ErrorResponse); ok {
			if _, err := fe.Receive(); err == nil {
				t.Fatal("connection still open after a protocol violation")
			}
			return e
		}
	}
}

// loginRaw logs in on c by hand as user (a trust user) and returns the
// protocol stream, ready for a request.
func loginRaw(t *testing.T, c net.Conn, user string) *pgproto3.Frontend {
	t.Helper()
	return loginRawTo(t, c, user, "ai_ninja")
}

// loginRawTo is loginRaw to database db.
func loginRawTo(t *testing.T, c net.Conn, user, db string) *pgproto3.Frontend {
	t.Helper()
	start, _ := (&pgproto3.StartupMessage{ProtocolVersion: pgproto3.ProtocolVersion30,
		Parameters: map[string]string{"user": user, "database": db}}).Encode(nil)
	if _, err := c.Write(start); err != nil {
		t.Fatal(err)
	}
	fe := pgproto3.NewFrontend(c, c)
	for {
		msg, err := fe.Receive()
		if err != nil {
			t.Fatal(err)
		}
		if _, ok := msg.(*pgproto3.ReadyForQuery); ok {
			return fe
		}
	}
}

func TestProtocolViolations(t *testing.T) {
	h := startProxy(t, "")
	bystander := h.ninja(t)
	tests := []struct {
		name  string
		login bool
		send  []byte
	}{
		{"startup length too small", false, []byte{0, 0, 0, 4}},
		{"startup length huge", false, []byte{0x7f, 0xff, 0xff, 0xff, 0, 3, 0, 0}},
		{"startup not terminated", false, append([]byte{0, 0, 0, 17, 0, 3, 0, 0}, []byte("user\x00bob\x00\x00x")...)},
		{"startup without user", false, append([]byte{0, 0, 0, 9, 0, 3, 0, 0}, 0)},
		{"message claims 2GB", true, []byte{'Q', 0x7f, 0xff, 0xff, 0xff, 's', 'e', 'l'}},
		{"message length below 4", true, []byte{'Q', 0, 0, 0, 2}},
		{"unknown message type", true, []byte{'?', 0, 0, 0, 4}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := rawConn(t, h)
			if tt.login {
				// A trust user, so the test gets past authentication by hand.
				loginRaw(t, c, "trusty")
			}
			if _, err := c.Write(tt.send); err != nil {
				t.Fatal(err)
			}
			e := readError(t, c)
			if e.Code != "08P01" && !(tt.name == "startup without user" && e.Code == "28000") {
				t.Fatalf("want 08P01, got %s %s", e.Code, e.Message)
			}
			// Everyone else keeps working.
			var one int
			if err := bystander.QueryRow(ctxT(t, 5*time.Second), "select 1").Scan(&one); err != nil || one != 1 {
				t.Fatalf("bystander broken: %v", err)
			}
		})
	}
}

func TestNegotiateProtocolVersion(t *testing.T) {
	h := startProxy(t, "")
	c := rawConn(t, h)
	body := []byte{0, 3, 0, 5}
	for _, kv := range []string{"user", "trusty", "database", "ai_ninja", "_pq_.future", "1"} {
		body = append(append(body, kv...), 0)
	}
	body = append(body, 0)
	pkt := binary.BigEndian.AppendUint32(nil, uint32(len(body)+4))
	if _, err := c.Write(append(pkt, body...)); err != nil {
		t.Fatal(err)
	}
	msg, err := pgproto3.NewFrontend(c, c).Receive()
	if err != nil {
		t.Fatal(err)
	}
	n, ok := msg.(*pgproto3.NegotiateProtocolVersion)
	if !ok || n.NewestMinorProtocol != 0 || len(n.UnrecognizedOptions) != 1 || n.UnrecognizedOptions[0] != "_pq_.future" {
		t.Fatalf("got %#v", msg)
	}
}

func TestPoolFullGives53300(t *testing.T) {
	h := startProxy(t, "pool:\n  max_size: 1\n  acquire_timeout: 300ms\n")
	holder := h.ninja(t)
	ctx := ctxT(t, 10*time.Second)
	if err := holder.QueryRow(ctx, "select 1").Scan(new(int)); err != nil {
		t.Fatal(err)
	}
	waiter := h.ninja(t) // login needs no server connection once params are known
	_, err := waiter.Exec(ctx, "select 1")
	if sqlstate(err) != "53300" {
		t.Fatalf("want 53300, got %v", err)
	}
	// The holder continues, and the refused client may retry on the same
	// connection once the holder leaves.
	if err := holder.QueryRow(ctx, "select 2").Scan(new(int)); err != nil {
		t.Fatal(err)
	}
	holder.Close(ctx)
	var got int
	if err := waiter.QueryRow(ctx, "select 3").Scan(&got); err != nil || got != 3 {
		t.Fatalf("retry after release: %d %v", got, err)
	}
}

func TestServerTerminated(t *testing.T) {
	h := startProxy(t, "")
	conn := h.ninja(t)
	ctx := ctxT(t, 10*time.Second)
	var pid int
	if err := conn.QueryRow(ctx, "select pg_backend_pid()").Scan(&pid); err != nil {
		t.Fatal(err)
	}
	if _, err := h.direct(t).Exec(ctx, "select pg_terminate_backend($1)", pid); err != nil {
		t.Fatal(err)
	}
	_, err := conn.Exec(ctx, "select 1")
	if code := sqlstate(err); code != "57P01" && code != "08006" {
		if err == nil || !strings.Contains(err.Error(), "57P01") {
			t.Fatalf("want 57P01/08006, got %v", err)
		}
	}
	// New clients get a fresh server connection.
	if err := h.ninja(t).QueryRow(ctx, "select 1").Scan(new(int)); err != nil {
		t.Fatal(err)
	}
}

func TestSessionStateResetBetweenClients(t *testing.T) {
	h := startProxy(t, "pool:\n  max_size: 1\n")
	ctx := ctxT(t, 10*time.Second)
	a := h.ninja(t)
	if _, err := a.Exec(ctx, "set search_path = 'nowhere'; create temp table leftover(x int)"); err != nil {
		t.Fatal(err)
	}
	if _, err := a.Exec(ctx, "begin"); err != nil {
		t.Fatal(err)
	}
	a.Close(ctx)
	b := h.ninja(t)
	var path string
	var temps int
	if err := b.QueryRow(ctx, "select current_setting('search_path'), (select count(*) from pg_class where relname = 'leftover')").Scan(&path, &temps); err != nil {
		t.Fatal(err)
	}
	if path == "nowhere" || temps != 0 {
		t.Fatalf("state leaked: search_path %q, temp tables %d", path, temps)
	}
	if b.PgConn().TxStatus() != 'I' {
		t.Fatalf("inherited a transaction")
	}
}

func TestStartupParamsFollowClient(t *testing.T) {
	h := startProxy(t, "pool:\n  max_size: 1\n")
	ctx := ctxT(t, 10*time.Second)
	for _, app := range []string{"first-app", "second-app"} {
		cfg, err := pgx.ParseConfig(h.dsn("ninja", "ninja", "ai_ninja") + "&application_name=" + app + "&search_path=pg_catalog,public")
		if err != nil {
			t.Fatal(err)
		}
		c, err := pgx.ConnectConfig(ctx, cfg)
		if err != nil {
			t.Fatal(err)
		}
		var got, path string
		if err := c.QueryRow(ctx, "select current_setting('application_name'), current_setting('search_path')").Scan(&got, &path); err != nil {
			t.Fatal(err)
		}
		if got != app || path != "pg_catalog,public" {
			t.Fatalf("want %q, got %q / %q", app, got, path)
		}
		if c.PgConn().ParameterStatus("application_name") != app {
			t.Fatalf("ParameterStatus application_name = %q", c.PgConn().ParameterStatus("application_name"))
		}
		c.Close(ctx)
	}
}

// A startup setting the server rejects fails the login with the server's
// SQLSTATE, as it does without the proxy; the check leaves nothing behind
// on the pooled connection it ran on.
func TestStartupSettingsCheckedAtLogin(t *testing.T) {
	for _, mode := range []string{"session", "transaction"} {
		t.Run(mode, func(t *testing.T) {
			h := startProxy(t, "pool:\n  mode: "+mode+"\n  max_size: 1\n")
			ctx := ctxT(t, 20*time.Second)
			// Each connection is closed as soon as its case is done: the
			// pool has one server connection, which the next check needs.
			connect := func(params map[string]string) (*pgx.Conn, error) { return h.connectWith(t, ctx, params) }
			setting := func(c *pgx.Conn, name string) string {
				var v string
				if err := c.QueryRow(ctx, "select current_setting($1)", name).Scan(&v); err != nil {
					t.Fatal(err)
				}
				return v
			}
			tests := []struct {
				name    string
				params  map[string]string
				code    string
				setting string
				want    string
			}{
				{"unknown parameter", map[string]string{"doesnotexist": "foo"}, "42704", "", ""},
				{"bad value", map[string]string{"work_mem": "notanumber"}, "22023", "", ""},
				{"bad value in options", map[string]string{"options": "-c statement_timeout=soon"}, "22023", "", ""},
				{"good value", map[string]string{"work_mem": "7MB"}, "", "work_mem", "7MB"},
				{"checked before", map[string]string{"work_mem": "7MB"}, "", "work_mem", "7MB"},
				{"parameter beats options", map[string]string{"options": "-c search_path=nowhere", "search_path": "public"}, "", "search_path", "public"},
				{"custom placeholder", map[string]string{"myapp.tenant": "42"}, "", "myapp.tenant", "42"},
			}
			for _, tt := range tests {
				t.Run(tt.name, func(t *testing.T) {
					c, err := connect(tt.params)
					if tt.code != "" {
						if got := sqlstate(err); got != tt.code {
							t.Fatalf("want SQLSTATE %s, got %v", tt.code, err)
						}
						return
					}
					if err != nil {
						t.Fatal(err)
					}
					defer c.Close(ctx)
					if got := setting(c, tt.setting); got != tt.want {
						t.Fatalf("%s = %q, want %q", tt.setting, got, tt.want)
					}
				})
			}
			// The pool's one connection ran every check; a client without
			// settings finds the server's defaults on it.
			c, err := connect(nil)
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close(ctx)
			if got := setting(c, "work_mem"); got != "4MB" {
				t.Fatalf("work_mem = %q after the checks, want the default 4MB", got)
			}
			if got := setting(c, "search_path"); got != `"$user", public` {
				t.Fatalf("search_path = %q after the checks, want the default", got)
			}
		})
	}
}

func TestShutdownWaitsForTransactions(t *testing.T) {
	h := startProxy(t, "")
	ctx := ctxT(t, 20*time.Second)
	idle := h.ninja(t)
	busy := h.ninja(t)
	if _, err := busy.Exec(ctx, "begin"); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() {
		sctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		done <- h.srv.Shutdown(sctx)
	}()
	time.Sleep(200 * time.Millisecond)
	// The idle client was told and disconnected.
	if _, err := idle.Exec(ctx, "select 1"); err == nil {
		t.Fatal("idle client still served during shutdown")
	}
	// The client in a transaction finishes it.
	if _, err := busy.Exec(ctx, "select 1"); err != nil {
		t.Fatalf("in-flight transaction cut: %v", err)
	}
	if _, err := busy.Exec(ctx, "commit"); err != nil {
		t.Fatalf("commit during shutdown: %v", err)
	}
	if err := <-done; err != nil {
		t.Fatalf("shutdown: %v", err)
	}
	if _, err := net.DialTimeout("tcp", h.addr, time.Second); err == nil {
		t.Fatal("still accepting after shutdown")
	}
}

// In session mode the client's BackendKeyData names its own backend, so
// tools that act on that pid reach the right server process; a client
// that logs in while the pool is full still gets a working session.
func TestSessionModeGivesTheBackendPID(t *testing.T) {
	h := startProxy(t, "pool:\n  max_size: 1\n  acquire_timeout: 5s\n")
	ctx := ctxT(t, 20*time.Second)
	a := h.ninja(t)
	var pid uint32
	if err := a.QueryRow(ctx, "select pg_backend_pid()").Scan(&pid); err != nil {
		t.Fatal(err)
	}
	if got := a.PgConn().PID(); got != pid {
		t.Fatalf("BackendKeyData pid %d, backend pid %d", got, pid)
	}

	// The pool is full: b logs in with a pid of the proxy's and waits
	// for a's connection at its first query.
	b := h.ninja(t)
	if b.PgConn().PID() == pid {
		t.Fatal("a second client was given a backend pid it does not have")
	}
	var bpid uint32
	done := make(chan error, 1)
	go func() { done <- b.QueryRow(ctx, "select pg_backend_pid()").Scan(&bpid) }()

	if _, err := h.direct(t).Exec(ctx, "select pg_terminate_backend($1)", a.PgConn().PID()); err != nil {
		t.Fatal(err)
	}
	_, err := a.Exec(ctx, "select 1")
	if code := sqlstate(err); code != "57P01" && code != "08006" {
		if err == nil || !strings.Contains(err.Error(), "57P01") {
			t.Fatalf("after pg_terminate_backend of its pid: %v", err)
		}
	}
	if err := <-done; err != nil {
		t.Fatalf("the waiting client: %v", err)
	}
	if bpid == 0 || bpid == pid {
		t.Fatalf("the waiting client ran on backend %d", bpid)
	}
}

// A session-mode client that pauses mid-batch has the server see what it
// sent so far: the statement timeout runs from its Parse, as it does
// without the proxy.
func TestSessionModeForwardsAPausedBatch(t *testing.T) {
	h := startProxy(t, "")
	fe := loginRaw(t, rawConn(t, h), "trusty")
	fe.Send(&pgproto3.Query{String: "set statement_timeout = '100ms'"})
	expectMessages(t, fe, "CommandComplete", "ReadyForQuery")
	fe.Send(&pgproto3.Parse{Query: "select 1"})
	if err := fe.Flush(); err != nil {
		t.Fatal(err)
	}
	time.Sleep(300 * time.Millisecond)
	fe.Send(&pgproto3.Describe{ObjectType: 'S'})
	fe.Send(&pgproto3.Sync{})
	msgs := expectMessages(t, fe, "ParseComplete", "ErrorResponse", "ReadyForQuery")
	if e := msgs[1].(*pgproto3.ErrorResponse); e.Code != "57014" {
		t.Fatalf("got %s %s, want the statement timeout", e.Code, e.Message)
	}
}
