package testbed

import (
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
)

// Replica is a streaming replica a test owns: it may stop, restart or
// promote it without disturbing the shared test bed's replica, which other
// packages use concurrently.
type Replica struct {
	env  *Env
	Dir  string
	Port int
}

// Addr is host:port.
func (r *Replica) Addr() string { return net.JoinHostPort("127.0.0.1", strconv.Itoa(r.Port)) }

// StartReplica builds a fresh replica of the primary with pg_basebackup on a
// free port, with extra postgresql.conf lines, and starts it. It is stopped
// and deleted when the test ends.
func (e *Env) StartReplica(tb testing.TB, conf ...string) *Replica {
	tb.Helper()
	dir, err := os.MkdirTemp(e.Dir, "extra-replica-")
	if err != nil {
		tb.Fatalf("replica dir: %v", err)
	}
	r := &Replica{env: e, Dir: dir, Port: freePort(tb)}
	tb.Cleanup(func() {
		_ = r.pgctl("stop", "-m", "immediate")
		_ = os.RemoveAll(dir)
	})
	if err := r.chownForServer(dir); err != nil {
		tb.Fatalf("replica dir: %v", err)
	}
	host, port, _ := net.SplitHostPort(e.Primary)
	data := filepath.Join(dir, "data")
	if out, err := r.asServer(filepath.Join(e.pgBin(), "pg_basebackup"), "-h", host, "-p", port,
		"-U", "replicator", "-D", data, "-R", "-X", "stream", "-c", "fast").CombinedOutput(); err != nil {
		tb.Fatalf("pg_basebackup: %v\n%s", err, out)
	}
	extra := fmt.Sprintf("\nport = %d\nunix_socket_directories = '%s'\nhot_standby = on\n", r.Port, dir)
	for _, line := range conf {
		extra += line + "\n"
	}
	if err := appendFile(filepath.Join(data, "postgresql.auto.conf"), extra); err != nil {
		tb.Fatal(err)
	}
	if err := r.Start(); err != nil {
		tb.Fatal(err)
	}
	return r
}

// Start starts the replica and waits until it accepts connections.
func (r *Replica) Start() error {
	if err := r.pgctl("start", "-w", "-t", "60", "-l", filepath.Join(r.Dir, "log")); err != nil {
		return err
	}
	return r.waitReady(30 * time.Second)
}

// Stop stops the replica (fast shutdown: its connections are terminated).
func (r *Replica) Stop() error { return r.pgctl("stop", "-m", "fast", "-w") }

// Promote turns the replica into a primary and waits until it leaves recovery.
func (r *Replica) Promote() error {
	if err := r.pgctl("promote", "-w"); err != nil {
		return err
	}
	return r.waitReady(30 * time.Second)
}

func (r *Replica) waitReady(d time.Duration) error {
	deadline := time.Now().Add(d)
	for {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		c, err := pgx.Connect(ctx, dsn(r.Addr(), "postgres", r.env.SuperUser, r.env.SuperPass))
		if err == nil {
			c.Close(ctx)
			cancel()
			return nil
		}
		cancel()
		if time.Now().After(deadline) {
			return fmt.Errorf("replica on %s not ready: %w", r.Addr(), err)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

func (r *Replica) pgctl(args ...string) error {
	args = append([]string{"-D", filepath.Join(r.Dir, "data")}, args...)
	out, err := r.asServer(filepath.Join(r.env.pgBin(), "pg_ctl"), args...).CombinedOutput()
	if err != nil {
		return fmt.Errorf("pg_ctl %v: %v\n%s", args, err, out)
	}
	return nil
}

// asServer runs a PostgreSQL tool as the postgres OS user when we are root,
// as the test bed script does (the server refuses to run as root).
func (r *Replica) asServer(name string, args ...string) *exec.Cmd {
	var cmd *exec.Cmd
	if os.Geteuid() == 0 {
		cmd = exec.Command("runuser", append([]string{"-u", "postgres", "--", name}, args...)...)
	} else {
		cmd = exec.Command(name, args...)
	}
	cmd.Env = append(os.Environ(), "PGPASSWORD=replicator")
	return cmd
}

func (r *Replica) chownForServer(dir string) error {
	if os.Geteuid() != 0 {
		return nil
	}
	u, err := user.Lookup("postgres")
	if err != nil {
		return err
	}
	uid, _ := strconv.Atoi(u.Uid)
	gid, _ := strconv.Atoi(u.Gid)
	return os.Chown(dir, uid, gid)
}

func (e *Env) pgBin() string {
	if e.PGBin != "" {
		return e.PGBin
	}
	return DefaultPGBin
}

func freePort(tb testing.TB) int {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

func appendFile(path, text string) error {
	f, err := os.OpenFile(path, os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		return err
	}
	defer f.Close()
	_, err = f.WriteString(text)
	return err
}
