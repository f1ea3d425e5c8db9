package pitr

import (
	"context"
	"crypto/rand"
	"fmt"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/ai-ninja/pgninja/sidecar/pgtool"
	"github.com/ai-ninja/pgninja/sidecar/pgtool/pgtest"
	"github.com/ai-ninja/pgninja/sidecar/sealed"
	"github.com/ai-ninja/pgninja/sidecar/storage"
)

// The test bed's replication role (scripts/testbed.sh).
const replUser, replPass = "replicator", "replicator"

func TestPointInTimeRestore(t *testing.T) {
	ctx := context.Background()
	bed := pgtest.Require(t)
	db := bed.NewDB(t)
	app := pgtest.Connect(t, db)
	super := pgtest.Connect(t, bed.Primary)
	mustExec := func(sql string) {
		t.Helper()
		if _, err := app.Exec(ctx, sql); err != nil {
			t.Fatalf("%s: %v", sql, err)
		}
	}
	mustExec("CREATE TABLE events (batch text, at timestamptz DEFAULT clock_timestamp())")
	mustExec("INSERT INTO events (batch) SELECT 'a' FROM generate_series(1, 100)")

	store, err := storage.NewLocal(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	raw := make([]byte, 32)
	rand.Read(raw)
	key, _ := sealed.NewKey(raw)
	repl := bed.Primary
	repl.User, repl.Password = replUser, replPass
	slot := fmt.Sprintf("pgninja_test_%d", time.Now().UnixNano()%1e9)
	a := &Archiver{Store: store, Key: key, Source: repl, Slot: slot, Dir: t.TempDir(), ServerMajor: 15, Interval: 200 * time.Millisecond}
	actx, stop := context.WithCancel(ctx)
	archDone := make(chan error, 1)
	go func() { archDone <- a.Run(actx) }()
	t.Cleanup(func() {
		stop()
		<-archDone
		super.Exec(context.Background(), "SELECT pg_drop_replication_slot($1) FROM pg_replication_slots WHERE slot_name = $1", slot)
	})

	base, err := TakeBase(ctx, store, key, pgtool.Tools{}, repl, 15, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	mustExec("INSERT INTO events (batch) SELECT 'b' FROM generate_series(1, 100)")
	time.Sleep(1500 * time.Millisecond)
	target := time.Now()
	time.Sleep(1500 * time.Millisecond)
	mustExec("INSERT INTO events (batch) SELECT 'c' FROM generate_series(1, 100)")

	// Complete the segment holding batch c and wait for it to be archived.
	var lsn string
	if err := super.QueryRow(ctx, "SELECT pg_walfile_name(pg_current_wal_lsn())").Scan(&lsn); err != nil {
		t.Fatal(err)
	}
	super.Exec(ctx, "SELECT pg_switch_wal()")
	deadline := time.Now().Add(60 * time.Second)
	for {
		names, _ := ArchivedWAL(ctx, store)
		if len(names) > 0 && names[len(names)-1] >= lsn {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("segment %s not archived; have %v", lsn, names)
		}
		time.Sleep(200 * time.Millisecond)
	}

	dataDir := dataDirFor(t)
	if _, err := PrepareRestore(ctx, store, key, target, dataDir, ""); err != nil {
		t.Fatal(err)
	}
	wrong, _ := sealed.NewKey(make([]byte, 32))
	if _, err := PrepareRestore(ctx, store, wrong, target, dataDir+"-x", ""); err == nil || !strings.Contains(err.Error(), "wrong backup key") {
		t.Fatalf("wrong key: %v", err)
	}
	if _, err := PrepareRestore(ctx, store, key, base.StartedAt.Add(-time.Hour), dataDir+"-y", ""); err != ErrNoBase {
		t.Fatalf("target before every base: %v", err)
	}

	port := startPostgres(t, dataDir)
	recovered := bed.Primary
	recovered.Port, recovered.Database = port, db.Database
	conn := waitPromoted(t, recovered)
	var counts string
	if err := conn.QueryRow(ctx, "SELECT string_agg(batch || '=' || n, ',' ORDER BY batch) FROM (SELECT batch, count(*) n FROM events GROUP BY batch) x").Scan(&counts); err != nil {
		t.Fatal(err)
	}
	if counts != "a=100,b=100" {
		t.Fatalf("recovered to %s, want a=100,b=100 (the state at the target time)", counts)
	}
}

// dataDirFor makes a path the postgres OS user can use when we are root
// (PostgreSQL refuses to run as root).
func dataDirFor(t *testing.T) string {
	parent, err := os.MkdirTemp("", "pgninja-pitr-")
	if err != nil {
		t.Fatal(err)
	}
	os.Chmod(parent, 0o755)
	t.Cleanup(func() { os.RemoveAll(parent) })
	return filepath.Join(parent, "data")
}

func asPostgres(args ...string) *exec.Cmd {
	if os.Geteuid() == 0 {
		return exec.Command("runuser", append([]string{"-u", "postgres", "--"}, args...)...)
	}
	return exec.Command(args[0], args[1:]...)
}

// startPostgres starts a server on the restored directory on a port next
// to the test bed's and stops it when the test ends.
func startPostgres(t *testing.T, dir string) int {
	t.Helper()
	if os.Geteuid() == 0 {
		u, err := user.Lookup("postgres")
		if err != nil {
			t.Fatal(err)
		}
		uid, _ := strconv.Atoi(u.Uid)
		gid, _ := strconv.Atoi(u.Gid)
		// The parent holds the log and the socket too.
		filepath.Walk(filepath.Dir(dir), func(p string, _ os.FileInfo, _ error) error { return os.Lchown(p, uid, gid) })
	}
	pgctl, err := pgtool.Tools{}.Path("pg_ctl", 15)
	if err != nil {
		t.Fatal(err)
	}
	bedPort, _ := strconv.Atoi(strings.Split(os.Getenv("PGNINJA_TEST_PRIMARY"), ":")[1])
	port := bedPort + 6 // +0..+3 are the test bed's, +4/+5 left for others
	sock := filepath.Dir(dir)
	opts := fmt.Sprintf("-p %d -k %s -c listen_addresses=127.0.0.1 -c hot_standby=on", port, sock)
	out, err := asPostgres(pgctl, "-D", dir, "-l", filepath.Join(sock, "log"), "-o", opts, "-w", "-t", "120", "start").CombinedOutput()
	if err != nil {
		logs, _ := os.ReadFile(filepath.Join(sock, "log"))
		t.Fatalf("pg_ctl start: %v: %s\n%s", err, out, logs)
	}
	t.Cleanup(func() { asPostgres(pgctl, "-D", dir, "-m", "immediate", "-w", "stop").Run() })
	return port
}

// waitPromoted waits until recovery has reached its target and the server
// accepts writes.
func waitPromoted(t *testing.T, tg pgtool.Target) *pgx.Conn {
	t.Helper()
	ctx := context.Background()
	deadline := time.Now().Add(90 * time.Second)
	for {
		c, err := pgtool.Connect(ctx, tg)
		if err == nil {
			var inRecovery bool
			if err = c.QueryRow(ctx, "SELECT pg_is_in_recovery()").Scan(&inRecovery); err == nil && !inRecovery {
				t.Cleanup(func() { c.Close(context.Background()) })
				return c
			}
			c.Close(ctx)
		}
		if time.Now().After(deadline) {
			t.Fatalf("restored server not promoted: %v", err)
		}
		time.Sleep(300 * time.Millisecond)
	}
}
