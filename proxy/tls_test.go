package proxy_test

import (
	"crypto/tls"
	"fmt"
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
