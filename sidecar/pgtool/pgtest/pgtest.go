// Package pgtest gives the sidecar's and the migrations' integration tests
// fresh databases on the shared test bed (a real primary and streaming
// replica), owned by the unprivileged application role as in production.
package pgtest

import (
	"context"
	"fmt"
	"os"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/ai-ninja/pgninja/sidecar/pgtool"
)

// AppUser and AppPassword are the test bed's application role: not a
// superuser, but allowed to create databases, like pgninja's demo user.
const (
	AppUser     = "ninja"
	AppPassword = "ninja"
)

var seq atomic.Int64

// Bed is the test bed as seen by these tests.
type Bed struct {
	Primary, Replica pgtool.Target // superuser, database postgres
}

// Require returns the test bed. TEMPORARY until internal/testbed lands.
func Require(t testing.TB) *Bed {
	t.Helper()
	p, r := os.Getenv("PGNINJA_TEST_PRIMARY"), os.Getenv("PGNINJA_TEST_REPLICA")
	if p == "" {
		if os.Getenv("CI") != "" {
			t.Fatal("test bed missing: run scripts/testbed.sh up")
		}
		t.Skip("no test bed (scripts/testbed.sh up)")
	}
	return &Bed{Primary: super(p), Replica: super(r)}
}

func super(addr string) pgtool.Target {
	host, port, _ := strings.Cut(addr, ":")
	var n int
	fmt.Sscan(port, &n)
	return pgtool.Target{Host: host, Port: n, User: "postgres", Password: "postgres", Database: "postgres"}
}

// NewDB creates an empty database owned by the application role, dropped
// when the test ends, and returns it as the application role sees it.
func (b *Bed) NewDB(t testing.TB) pgtool.Target {
	t.Helper()
	ctx := context.Background()
	name := fmt.Sprintf("t_%d_%d_%d", os.Getpid(), time.Now().UnixNano()%1e6, seq.Add(1))
	c, err := pgtool.Connect(ctx, b.Primary)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close(ctx)
	if _, err := c.Exec(ctx, "CREATE DATABASE "+name+" OWNER "+AppUser); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { b.DropDB(name) })
	return b.App(name)
}

// App is the primary's database db as the application role.
func (b *Bed) App(db string) pgtool.Target {
	tg := b.Primary
	tg.User, tg.Password, tg.Database = AppUser, AppPassword, db
	return tg
}

// AppReplica is the replica's database db as the application role.
func (b *Bed) AppReplica(db string) pgtool.Target {
	tg := b.Replica
	tg.User, tg.Password, tg.Database = AppUser, AppPassword, db
	return tg
}

// DropDB drops a database, ending its sessions.
func (b *Bed) DropDB(name string) {
	ctx := context.Background()
	c, err := pgtool.Connect(ctx, b.Primary)
	if err != nil {
		return
	}
	defer c.Close(ctx)
	c.Exec(ctx, "DROP DATABASE IF EXISTS "+pgx.Identifier{name}.Sanitize()+" WITH (FORCE)")
}

// WaitReplica waits until the replica has replayed everything the primary
// has written so far.
func (b *Bed) WaitReplica(t testing.TB) {
	t.Helper()
	ctx := context.Background()
	p, err := pgtool.Connect(ctx, b.Primary)
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close(ctx)
	var lsn string
	if err := p.QueryRow(ctx, "SELECT pg_current_wal_lsn()::text").Scan(&lsn); err != nil {
		t.Fatal(err)
	}
	r, err := pgtool.Connect(ctx, b.Replica)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close(ctx)
	deadline := time.Now().Add(60 * time.Second)
	for {
		var caught bool
		if err := r.QueryRow(ctx, "SELECT pg_last_wal_replay_lsn() >= $1::pg_lsn", lsn).Scan(&caught); err != nil {
			t.Fatal(err)
		}
		if caught {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("replica did not replay up to %s within 60s", lsn)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// Connect opens a connection closed at the end of the test.
func Connect(t testing.TB, tg pgtool.Target) *pgx.Conn {
	t.Helper()
	c, err := pgtool.Connect(context.Background(), tg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close(context.Background()) })
	return c
}
