package proxy_test

import (
	"context"
	"fmt"
	"net"
	"testing"
	"time"

	"github.com/ai-ninja/pgninja/internal/testbed"
	"github.com/jackc/pgx/v5"
)

// TestSOReusePortRestartRefusesNobody: with so_reuseport two pgninja
// processes listen on one port and the kernel spreads logins over them;
// once the old one shuts down, the new one takes every login, so a
// restart done that way refuses no client.
func TestSOReusePortRestartRefusesNobody(t *testing.T) {
	env := testbed.Require(t)
	addr := freeAddr(t)
	dir := t.TempDir()
	sets := []string{"listen=" + addr, "so_reuseport=true", "unix_socket_dir=" + dir}
	start := func() *harness {
		return startServer(t, env, backendsOf(t, env), nil, serverHooks{sets: sets})
	}
	old, fresh := start(), start()
	ctx := ctxT(t, 60*time.Second)
	dsn := fmt.Sprintf("postgres://ninja:ninja@%s/ai_ninja?sslmode=disable", addr)
	// pg_backend_pid tells the servers apart only per pool, so each
	// proxy's own count of clients tells who accepted the login.
	var conns []*pgx.Conn
	for range 40 {
		c, err := pgx.Connect(ctx, dsn)
		if err != nil {
			t.Fatalf("login with both listening: %v", err)
		}
		conns = append(conns, c)
	}
	// A proxy counts a client just after sending it ReadyForQuery, so
	// the last login may not be counted yet when Connect returns.
	var a, b int
	waitFor(t, 10*time.Second, "every login counted", func() bool {
		a, b = clientsOf(t, old), clientsOf(t, fresh)
		return a+b == 40
	})
	if a == 0 || b == 0 {
		t.Fatalf("40 logins spread %d / %d over the two processes, want both used", a, b)
	}
	for _, c := range conns {
		_ = c.Close(ctx)
	}
	sctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	if err := old.srv.Shutdown(sctx); err != nil {
		t.Fatal(err)
	}
	// The unix socket is the new process's, and the old one's stopping
	// left it in place.
	_, port, _ := net.SplitHostPort(addr)
	unixDSN := fmt.Sprintf("host=%s port=%s user=ninja password=ninja dbname=ai_ninja sslmode=disable", dir, port)
	for i := range 40 {
		target := dsn
		if i%2 == 1 {
			target = unixDSN
		}
		c, err := pgx.Connect(ctx, target)
		if err != nil {
			t.Fatalf("login %d after the old process stopped: %v", i, err)
		}
		var one int
		if err := c.QueryRow(ctx, "select 1").Scan(&one); err != nil || one != 1 {
			t.Fatalf("query after the old process stopped: %v, %v", one, err)
		}
		_ = c.Close(ctx)
	}
}

// clientsOf counts the clients logged in to h, from its metrics.
func clientsOf(t *testing.T, h *harness) int {
	t.Helper()
	return int(gaugeValue(t, h.reg, "pgninja_clients_connected"))
}

// freeAddr is a loopback TCP address free a moment ago, for a test that
// must name the port before listening: the unix socket file is named
// after the configured port, so the listener cannot pick it.
func freeAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}
