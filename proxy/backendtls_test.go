package proxy_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/ai-ninja/pgninja/internal/testbed"
	"github.com/ai-ninja/pgninja/internal/testcert"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
)

// serverTLS reports whether the server connection that runs the query
// came over TLS, and its protocol version.
func serverTLS(t testing.TB, c *pgx.Conn) (bool, string) {
	t.Helper()
	var on bool
	var version string
	if err := c.QueryRow(context.Background(),
		"select ssl, coalesce(version, '') from pg_stat_ssl where pid = pg_backend_pid()").Scan(&on, &version); err != nil {
		t.Fatalf("pg_stat_ssl: %v", err)
	}
	return on, version
}

// TestBackendTLSToTheRealServers: with tls.backend_sslmode verify-full
// and the test bed's CA in backend_ca_file, every way pgninja reaches a
// server goes over TLS that it verified: the pools in both modes, the
// login with a pass-through user's keys (pgninja's own TLS handshake and
// SCRAM-SHA-256-PLUS, whose binding data PostgreSQL checks), the
// routing's replica, and a cancel reaches the query it names. A CA
// that did not sign the servers' certificate keeps clients out with the
// verification failure in the error.
func TestBackendTLSToTheRealServers(t *testing.T) {
	env := testbed.Require(t)
	tlsConf := fmt.Sprintf("tls:\n  backend_sslmode: verify-full\n  backend_ca_file: %s\n", env.RequireCA(t))
	ctx := ctxT(t, 90*time.Second)

	for _, mode := range []string{"session", "transaction"} {
		t.Run(mode, func(t *testing.T) {
			h := startProxy(t, tlsConf+"pool: {mode: "+mode+", max_size: 2}\n")
			c := h.ninja(t)
			if on, version := serverTLS(t, c); !on {
				t.Fatalf("the server connection is not TLS")
			} else {
				t.Logf("server connection over %s", version)
			}
			// A cancel is sent to the server on a connection of its own.
			done := make(chan error, 1)
			go func() {
				_, err := c.Exec(ctx, "select pg_sleep(30)")
				done <- err
			}()
			time.Sleep(300 * time.Millisecond)
			if err := c.PgConn().CancelRequest(ctx); err != nil {
				t.Fatalf("cancel: %v", err)
			}
			select {
			case err := <-done:
				if sqlstate(err) != "57014" {
					t.Errorf("cancelled sleep: %v, want 57014", err)
				}
			case <-time.After(10 * time.Second):
				t.Fatal("the cancel did not reach the server")
			}
		})
	}

	t.Run("pass-through keys", func(t *testing.T) {
		direct := startProxy(t, "").direct(t)
		role, verifier := scramRole(t, direct, "tls-secret")
		users := filepath.Join(t.TempDir(), "users.txt")
		if err := os.WriteFile(users, []byte(fmt.Sprintf("%q %q\n", role, verifier)), 0o600); err != nil {
			t.Fatal(err)
		}
		h := startProxy(t, tlsConf+"auth:\n  users_file: "+users+"\n")
		c, err := pgx.Connect(ctx, fmt.Sprintf("postgres://%s:tls-secret@%s/ai_ninja?sslmode=disable", role, h.addr))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = c.Close(context.Background()) })
		var who string
		if err := c.QueryRow(ctx, "select current_user").Scan(&who); err != nil || who != role {
			t.Fatalf("logged in as %q (%v), want %s", who, err, role)
		}
		if on, _ := serverTLS(t, c); !on {
			t.Error("the keys' server connection is not TLS")
		}
	})

	t.Run("replica", func(t *testing.T) {
		h := startWith(t, env, routedConfig(t, env.Primary, 0, map[string]string{"replica": env.Replica}, 1, tlsConf))
		c := h.ninja(t)
		replica := portOf(t, env.Replica)
		waitFor(t, 15*time.Second, "reads on the replica", func() bool {
			return serverPort(t, c, "select inet_server_port()") == replica
		})
		var port int
		var on bool
		if err := c.QueryRow(ctx, "select inet_server_port(), ssl from pg_stat_ssl where pid = pg_backend_pid()").Scan(&port, &on); err != nil {
			t.Fatal(err)
		}
		if port != replica || !on {
			t.Errorf("a read ran on port %d over TLS %v, want the replica %d over TLS", port, on, replica)
		}
		if strings.Contains(h.logs.String(), "certificate") {
			t.Errorf("the health checks logged a certificate problem:\n%s", h.logs.String())
		}
	})

	t.Run("another CA", func(t *testing.T) {
		other, _ := testcert.Files(t) // self-signed: a CA that signed nothing the servers hold
		h := startProxy(t, fmt.Sprintf("tls:\n  backend_sslmode: verify-full\n  backend_ca_file: %s\n", other))
		// The login may be answered from what the proxy knows; the first
		// query needs a server connection.
		c, err := pgx.Connect(ctx, h.dsn("ninja", "ninja", "ai_ninja"))
		if err == nil {
			t.Cleanup(func() { _ = c.Close(context.Background()) })
			_, err = c.Exec(ctx, "select 1")
		}
		var pe *pgconn.PgError
		if !errors.As(err, &pe) || !strings.HasPrefix(pe.Code, "08") ||
			!strings.Contains(pe.Message+" "+pe.Detail, "certificate") {
			t.Errorf("a server whose certificate the CA did not sign: %v, want a connection error naming the certificate", err)
		} else {
			t.Logf("refused: %s (%s)", pe.Message, pe.Detail)
		}
	})
}
