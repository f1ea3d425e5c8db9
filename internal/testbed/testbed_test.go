package testbed

import (
	"bufio"
	"context"
	"fmt"
	"net"
	"net/url"
	"strings"
	"testing"
	"time"
)

// TestServices checks the bed is what the integration tests assume: a
// writable primary, a replica in recovery that the primary streams to, and a
// Redis that answers PING.
func TestServices(t *testing.T) {
	env := Require(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()

	primary := env.Connect(t, env.SuperDSN("postgres"))
	var inRecovery bool
	if err := primary.QueryRow(ctx, "select pg_is_in_recovery()").Scan(&inRecovery); err != nil {
		t.Fatal(err)
	}
	if inRecovery {
		t.Fatalf("primary %s is in recovery", env.Primary)
	}
	var version int
	if err := primary.QueryRow(ctx, "select current_setting('server_version_num')::int").Scan(&version); err != nil {
		t.Fatal(err)
	}
	if version/10000 != 15 {
		t.Errorf("primary runs PostgreSQL %d, want 15", version)
	}
	var streaming int
	if err := primary.QueryRow(ctx,
		"select count(*) from pg_stat_replication where state = 'streaming'").Scan(&streaming); err != nil {
		t.Fatal(err)
	}
	if streaming < 1 {
		t.Errorf("pg_stat_replication on the primary shows %d streaming replicas, want >= 1", streaming)
	}

	replica := env.Connect(t, env.SuperReplicaDSN("postgres"))
	if err := replica.QueryRow(ctx, "select pg_is_in_recovery()").Scan(&inRecovery); err != nil {
		t.Fatal(err)
	}
	if !inRecovery {
		t.Errorf("replica %s is not in recovery", env.Replica)
	}
	var walStatus string
	if err := replica.QueryRow(ctx, "select coalesce((select status from pg_stat_wal_receiver), 'none')").Scan(&walStatus); err != nil {
		t.Fatal(err)
	}
	if walStatus != "streaming" {
		t.Errorf("replica wal receiver status %q, want streaming", walStatus)
	}

	// The application role can log in over TCP with SCRAM and owns ai_ninja.
	app := env.Connect(t, env.AppDSN(AppDB))
	var owner string
	if err := app.QueryRow(ctx,
		"select pg_get_userbyid(datdba) from pg_database where datname = current_database()").Scan(&owner); err != nil {
		t.Fatal(err)
	}
	if owner != AppUser {
		t.Errorf("%s is owned by %q, want %q", AppDB, owner, AppUser)
	}

	if got := redisPing(t, env.Redis); got != "+PONG" {
		t.Errorf("redis PING answered %q, want +PONG", got)
	}
}

func redisPing(t *testing.T, addr string) string {
	t.Helper()
	c, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		t.Fatalf("redis %s: %v", addr, err)
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(5 * time.Second))
	if _, err := c.Write([]byte("*1\r\n$4\r\nPING\r\n")); err != nil {
		t.Fatal(err)
	}
	line, err := bufio.NewReader(c).ReadString('\n')
	if err != nil {
		t.Fatalf("redis %s: %v", addr, err)
	}
	return strings.TrimRight(line, "\r\n")
}

// TestCreateDBReplicates writes through a fresh database on the primary, reads
// it back from the replica after WaitReplicaCaughtUp, and checks the database
// is dropped when its test ends.
func TestCreateDBReplicates(t *testing.T) {
	env := Require(t)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()

	var db string
	t.Run("inner", func(t *testing.T) {
		db = env.CreateDB(t, t.Name())
		if !strings.HasPrefix(db, "testcreatedbreplicates_inner_") {
			t.Errorf("database name %q does not carry the requested prefix", db)
		}
		w := env.Connect(t, env.PrimaryDSN(db, AppUser, AppPass))
		if _, err := w.Exec(ctx, "create table kv (k int primary key, v text); insert into kv values (1, 'replicated')"); err != nil {
			t.Fatal(err)
		}
		env.WaitReplicaCaughtUp(t, ctx)
		r := env.Connect(t, env.ReplicaDSN(db, AppUser, AppPass))
		var v string
		if err := r.QueryRow(ctx, "select v from kv where k = 1").Scan(&v); err != nil {
			t.Fatalf("read from replica: %v", err)
		}
		if v != "replicated" {
			t.Errorf("replica has %q", v)
		}
		if _, err := r.Exec(ctx, "insert into kv values (2, 'x')"); err == nil {
			t.Errorf("write on the replica succeeded; want read-only error")
		}
	})

	su := env.Connect(t, env.SuperDSN("postgres"))
	var n int
	if err := su.QueryRow(ctx, "select count(*) from pg_database where datname = $1", db).Scan(&n); err != nil {
		t.Fatal(err)
	}
	if n != 0 {
		t.Errorf("database %s still exists after its test ended", db)
	}
}

func TestUniqueDBName(t *testing.T) {
	seen := map[string]bool{}
	for _, in := range []string{"TestFoo/bar baz", "", "123", strings.Repeat("x", 200), "ünï-cödé"} {
		got := uniqueDBName(in)
		if len(got) > 63 {
			t.Errorf("uniqueDBName(%q) = %q: longer than 63 bytes", in, got)
		}
		for _, r := range got {
			if !(r >= 'a' && r <= 'z' || r >= '0' && r <= '9' || r == '_') {
				t.Errorf("uniqueDBName(%q) = %q: contains %q", in, got, r)
			}
		}
		if got[0] >= '0' && got[0] <= '9' {
			t.Errorf("uniqueDBName(%q) = %q starts with a digit", in, got)
		}
		if seen[got] {
			t.Errorf("uniqueDBName(%q) = %q repeated", in, got)
		}
		seen[got] = true
	}
}

func TestDSNEscapes(t *testing.T) {
	e := &Env{Primary: "127.0.0.1:1", Replica: "127.0.0.1:2", SuperUser: "su", SuperPass: "p@ss/w:rd"}
	for _, s := range []string{e.SuperDSN("my db"), e.ReplicaDSN("d", "u", "p w"), e.PrimaryDSN("d", "u", "")} {
		u, err := url.Parse(s)
		if err != nil {
			t.Fatalf("%s: %v", s, err)
		}
		if u.Scheme != "postgres" || u.Query().Get("sslmode") != "disable" {
			t.Errorf("unexpected DSN %s", s)
		}
	}
	u, _ := url.Parse(e.SuperDSN("my db"))
	if p, _ := u.User.Password(); p != "p@ss/w:rd" || u.Path != "/my db" || u.Host != "127.0.0.1:1" {
		t.Errorf("SuperDSN round trip: pass %q path %q host %q", p, u.Path, u.Host)
	}
}

// fakeTB records how unavailable stopped a test.
type fakeTB struct {
	testing.TB
	fatal, skip string
}

func (f *fakeTB) Helper()                        {}
func (f *fakeTB) Fatalf(format string, a ...any) { f.fatal = fmt.Sprintf(format, a...) }
func (f *fakeTB) Skipf(format string, a ...any)  { f.skip = fmt.Sprintf(format, a...) }

func TestUnavailableNeverSkipsInCI(t *testing.T) {
	t.Setenv("CI", "true")
	f := &fakeTB{}
	unavailable(f, "no bed")
	if f.fatal == "" || f.skip != "" {
		t.Errorf("with CI set: fatal=%q skip=%q; want a failure, not a skip", f.fatal, f.skip)
	}

	t.Setenv("CI", "")
	f = &fakeTB{}
	unavailable(f, "no bed")
	if f.skip == "" || f.fatal != "" || !strings.Contains(f.skip, "make test") {
		t.Errorf("without CI: fatal=%q skip=%q; want a skip mentioning make test", f.fatal, f.skip)
	}
}
