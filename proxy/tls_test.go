package proxy_test

import (
	"context"
	"crypto/tls"
	"fmt"
	"net"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ai-ninja/pgninja/internal/testcert"
	"github.com/jackc/pgx/v5"
)

// TestTLSClientsAndChannelBinding: with a certificate configured, clients
// that ask for TLS get it and log in with SCRAM, bound to the TLS channel
// (SCRAM-SHA-256-PLUS) when they require it, as PostgreSQL offers; clients
// that do not ask keep plain TCP.
func TestTLSClientsAndChannelBinding(t *testing.T) {
	certFile, keyFile := testcert.Files(t)
	h := startProxy(t, fmt.Sprintf("admin_users: [ninja]\ntls:\n  cert_file: %s\n  key_file: %s\n", certFile, keyFile))
	ctx := ctxT(t, 30*time.Second)
	for _, tt := range []struct {
		app, params string
		tls         bool
	}{
		{"bound", "sslmode=require&channel_binding=require", true},
		{"unbound", "sslmode=require&channel_binding=disable", true},
		{"plain", "sslmode=disable", false},
	} {
		dsn := fmt.Sprintf("postgres://ninja:ninja@%s/ai_ninja?%s&application_name=%s", h.addr, tt.params, tt.app)
		c, err := pgx.Connect(ctx, dsn)
		if err != nil {
			t.Errorf("%s: %v", tt.app, err)
			continue
		}
		defer c.Close(ctx)
		var n int
		if err := c.QueryRow(ctx, "select 41 + 1").Scan(&n); err != nil || n != 42 {
			t.Errorf("%s: select: %d, %v", tt.app, n, err)
		}
		if got := c.PgConn().Conn() != nil && isTLS(c); got != tt.tls {
			t.Errorf("%s: TLS %v, want %v", tt.app, got, tt.tls)
		}
	}
	con, err := h.console(t, "ninja", "ninja", "pgninja")
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range rowsWhere(consoleRows(t, con, "SHOW CLIENTS"), "database", "ai_ninja") {
		if onTLS := r["tls"] != ""; onTLS != (r["application_name"] != "plain") {
			t.Errorf("SHOW CLIENTS %s: tls %q", r["application_name"], r["tls"])
		}
	}
}

func isTLS(c *pgx.Conn) bool {
	_, ok := c.PgConn().Conn().(interface{ ConnectionState() tls.ConnectionState })
	return ok
}

// splitConn holds back the second part of the write it is told to split
// until release is closed, as a slow network would cut a TLS record.
type splitConn struct {
	net.Conn
	split   atomic.Bool
	sent    chan struct{} // closed once the first part is written
	release chan struct{}
}

func (c *splitConn) Write(b []byte) (int, error) {
	if len(b) < 2 || !c.split.CompareAndSwap(true, false) {
		return c.Conn.Write(b)
	}
	n, err := c.Conn.Write(b[:len(b)/2])
	close(c.sent)
	if err != nil {
		return n, err
	}
	<-c.release
	m, err := c.Conn.Write(b[len(b)/2:])
	return n + m, err
}

// TestTLSIdleClientsWaitInTheParkingLot: quiet TLS clients in transaction
// mode give up their goroutine as plain ones do, and each goes on where
// it stopped: with a request of many TLS records, and with one whose
// only record arrived in two parts with the client parked in between
// (the first part then sits inside the TLS connection, not in the
// socket).
func TestTLSIdleClientsWaitInTheParkingLot(t *testing.T) {
	certFile, keyFile := testcert.Files(t)
	h := startProxy(t, fmt.Sprintf("%stls:\n  cert_file: %s\n  key_file: %s\n", consoleUsers, certFile, keyFile))
	ctx := ctxT(t, 60*time.Second)
	parked := func() float64 { return gaugeValue(t, h.reg, "pgninja_clients_parked") }
	dsn := fmt.Sprintf("postgres://ninja:ninja@%s/ai_ninja?sslmode=require", h.addr)

	const n = 3
	clients := make([]*pgx.Conn, n)
	for i := range clients {
		c, err := pgx.Connect(ctx, dsn)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = c.Close(context.Background()) })
		clients[i] = c
	}
	cfg, err := pgx.ParseConfig(dsn)
	if err != nil {
		t.Fatal(err)
	}
	sc := &splitConn{sent: make(chan struct{}), release: make(chan struct{})}
	cfg.DialFunc = func(ctx context.Context, network, addr string) (net.Conn, error) {
		nc, err := (&net.Dialer{}).DialContext(ctx, network, addr)
		sc.Conn = nc
		return sc, err
	}
	slow, err := pgx.ConnectConfig(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = slow.Close(context.Background()) })
	if !isTLS(slow) {
		t.Fatal("the client is not on TLS")
	}
	waitFor(t, 10*time.Second, "the idle TLS clients to park", func() bool { return parked() == n+1 })

	big := strings.Repeat("pgninja ", 40_000) // 320 KB: twenty TLS records
	for i, c := range clients {
		var got string
		if err := c.QueryRow(ctx, "select $1::text || $2::int", big, i).Scan(&got); err != nil || got != big+itoa(uint32(i)) {
			t.Fatalf("client %d after parking: %d bytes back, %v", i, len(got), err)
		}
	}
	waitFor(t, 10*time.Second, "the clients to park again", func() bool { return parked() == n+1 })

	sc.split.Store(true)
	answer := make(chan error, 1)
	go func() {
		var got int
		err := slow.QueryRow(ctx, "select 6 * 7").Scan(&got)
		if err == nil && got != 42 {
			err = fmt.Errorf("got %d", got)
		}
		answer <- err
	}()
	<-sc.sent
	// The first half wakes the client; with the rest of its record held
	// back, it parks again.
	waitFor(t, 10*time.Second, "the client to wake for the first half", func() bool { return parked() == n })
	waitFor(t, 10*time.Second, "the client to park with half a record", func() bool { return parked() == n+1 })
	close(sc.release)
	select {
	case err := <-answer:
		if err != nil {
			t.Fatalf("the query whose record arrived in two parts: %v", err)
		}
	case <-ctx.Done():
		t.Fatal("the query whose record arrived in two parts got no answer")
	}
}
