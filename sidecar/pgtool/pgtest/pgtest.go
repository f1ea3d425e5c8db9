// Package pgtest adapts the shared test bed (internal/testbed: a real
// PostgreSQL primary and streaming replica) to the sidecar's types: fresh
// databases owned by the unprivileged application role, as in production,
// returned as pgtool.Targets. Like testbed.Require, it fails tests when CI
// is set and the test bed is missing, and skips them otherwise.
package pgtest

import (
	"context"
	"net"
	"strconv"
	"testing"

	"github.com/jackc/pgx/v5"

	"github.com/ai-ninja/pgninja/internal/testbed"
	"github.com/ai-ninja/pgninja/sidecar/pgtool"
)

// AppUser and AppPassword are the test bed's application role: not a
// superuser, but allowed to create databases, like pgninja's demo user.
const (
	AppUser     = testbed.AppUser
	AppPassword = testbed.AppPass
)

// Bed is the test bed as seen by these tests.
type Bed struct {
	env              *testbed.Env
	Primary, Replica pgtool.Target // superuser, database postgres
}

// Require returns the test bed (see testbed.Require).
func Require(t testing.TB) *Bed {
	t.Helper()
	env := testbed.Require(t)
	return &Bed{env: env, Primary: super(t, env, env.Primary), Replica: super(t, env, env.Replica)}
}

func super(t testing.TB, env *testbed.Env, addr string) pgtool.Target {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		t.Fatal(err)
	}
	n, err := strconv.Atoi(port)
	if err != nil {
		t.Fatal(err)
	}
	return pgtool.Target{Host: host, Port: n, User: env.SuperUser, Password: env.SuperPass, Database: "postgres", SSLMode: "disable"}
}

// NewDB creates an empty database owned by the application role, dropped
// when the test ends, and returns it as the application role sees it.
func (b *Bed) NewDB(t testing.TB) pgtool.Target {
	t.Helper()
	return b.App(b.env.CreateDB(t, "sidecar"))
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

// WaitReplica waits until the replica has replayed everything the primary
// has written so far.
func (b *Bed) WaitReplica(t testing.TB) {
	t.Helper()
	b.env.WaitReplicaCaughtUp(t, context.Background())
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
