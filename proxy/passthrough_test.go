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

	"github.com/ai-ninja/pgninja/internal/auth"
	"github.com/ai-ninja/pgninja/internal/testbed"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
)

// TestSCRAMPassThrough: a user the proxy knows only by its SCRAM verifier
// (a users file line copied from pg_authid, as PgBouncer's userlist.txt
// holds it) logs in through the proxy to PostgreSQL, which asks for the
// password the proxy never had: the client's own login gave the keys, and
// every server connection the pool opens later uses them. A verifier
// that is not the server's (another salt) gets the client a clear 08006,
// and a wrong password 28P01 as ever.
func TestSCRAMPassThrough(t *testing.T) {
	testbed.Require(t)
	h0 := startProxy(t, "") // for its direct connection
	direct := h0.direct(t)
	ctx := ctxT(t, 60*time.Second)
	role, verifier := scramRole(t, direct, "pt-secret")
	dir := t.TempDir()
	usersFile := filepath.Join(dir, "users.txt")
	writeUsers := func(v string) {
		t.Helper()
		if err := os.WriteFile(usersFile, []byte(fmt.Sprintf("%q %q\n", role, v)), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	writeUsers(verifier)
	h := startProxy(t, "pool: {mode: transaction, max_size: 3}\nauth:\n  users_file: "+usersFile+"\n")
	dsn := func(pass string) string {
		return fmt.Sprintf("postgres://%s:%s@%s/ai_ninja?sslmode=disable", role, pass, h.addr)
	}

	// Three clients each in a transaction hold three server connections,
	// all opened with the keys.
	var clients []*pgx.Conn
	for i := range 3 {
		c, err := pgx.Connect(ctx, dsn("pt-secret"))
		if err != nil {
			t.Fatalf("client %d: %v", i, err)
		}
		t.Cleanup(func() { _ = c.Close(context.Background()) })
		clients = append(clients, c)
		var who string
		if _, err := c.Exec(ctx, "begin"); err != nil {
			t.Fatal(err)
		}
		if err := c.QueryRow(ctx, "select current_user").Scan(&who); err != nil || who != role {
			t.Fatalf("client %d is %q (%v), want %s", i, who, err, role)
		}
	}
	var n int
	if err := direct.QueryRow(ctx, "select count(*) from pg_stat_activity where usename = $1 and datname = 'ai_ninja'", role).Scan(&n); err != nil || n < 3 {
		t.Errorf("%d server connections as %s (%v), want 3", n, role, err)
	}
	for _, c := range clients {
		if _, err := c.Exec(ctx, "commit"); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := pgx.Connect(ctx, dsn("wrong")); sqlstate(err) != "28P01" {
		t.Errorf("a wrong password: %v, want 28P01", err)
	}

	// Another verifier of the same password: the proxy takes the client,
	// the server cannot take the keys.
	other, err := auth.Verifier(role, "pt-secret", 4096)
	if err != nil {
		t.Fatal(err)
	}
	writeUsers(other)
	h2 := startProxy(t, "auth:\n  users_file: "+usersFile+"\n")
	_, err = pgx.Connect(ctx, fmt.Sprintf("postgres://%s:pt-secret@%s/ai_ninja?sslmode=disable", role, h2.addr))
	var pe *pgconn.PgError
	if !errors.As(err, &pe) || pe.Code != "08006" || !strings.Contains(pe.Detail, "verifier") {
		t.Errorf("a users file verifier that is not the server's: %v, want 08006 whose detail names the verifier", err)
	}
	if strings.Contains(h.logs.String(), "cannot read function volatility") {
		t.Error("the volatility lookup could not log in with the keys")
	}
}

// scramRole makes a login role on the test bed with password, dropped
// when the test ends, and returns its name and the SCRAM verifier
// PostgreSQL stored for it.
func scramRole(t *testing.T, direct *pgx.Conn, password string) (role, verifier string) {
	t.Helper()
	ctx := ctxT(t, 10*time.Second)
	role = fmt.Sprintf("pt_%d", time.Now().UnixNano()%1_000_000_000)
	if _, err := direct.Exec(ctx, fmt.Sprintf("create role %s login password '%s'", role, password)); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx := context.Background()
		_, _ = direct.Exec(ctx, "select pg_terminate_backend(pid) from pg_stat_activity where usename = $1", role)
		time.Sleep(200 * time.Millisecond)
		if _, err := direct.Exec(ctx, "drop role "+role); err != nil {
			t.Logf("drop role %s: %v", role, err)
		}
	})
	if err := direct.QueryRow(ctx, "select rolpassword from pg_authid where rolname = $1", role).Scan(&verifier); err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(verifier, "SCRAM-SHA-256$") {
		t.Fatalf("the test bed stored %q, not a SCRAM verifier", verifier)
	}
	return role, verifier
}
