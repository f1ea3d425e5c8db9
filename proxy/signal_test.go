package proxy_test

import (
	"context"
	"encoding/binary"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgproto3"
)

// waitSleeping waits until the primary runs query for some client.
func waitSleeping(t *testing.T, ctx context.Context, direct *pgx.Conn, query string) {
	t.Helper()
	for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		var n int
		_ = direct.QueryRow(ctx, "select count(*) from pg_stat_activity where query = $1 and state = 'active'", query).Scan(&n)
		if n == 1 {
			return
		}
	}
	t.Fatalf("%q never ran", query)
}

// TestSignalClientByProxyPID: pg_terminate_backend and pg_cancel_backend
// of the process ID a transaction-mode client was given reach that client,
// in every form drivers send them.
func TestSignalClientByProxyPID(t *testing.T) {
	h := startProxy(t, fmt.Sprintf(txnMode, 4, "30s"))
	ctx := ctxT(t, 60*time.Second)
	direct := h.direct(t)
	forms := []struct {
		name string
		call func(killer *pgx.Conn, pid uint32) (bool, error)
	}{
		{"simple protocol, constant", func(k *pgx.Conn, pid uint32) (ok bool, err error) {
			err = k.QueryRow(ctx, fmt.Sprintf("select pg_terminate_backend(%d)", pid), pgx.QueryExecModeSimpleProtocol).Scan(&ok)
			return
		}},
		{"prepared statement, binary parameter", func(k *pgx.Conn, pid uint32) (ok bool, err error) {
			err = k.QueryRow(ctx, "select pg_terminate_backend($1)", pid).Scan(&ok)
			return
		}},
		{"unnamed statement, text parameter", func(k *pgx.Conn, pid uint32) (ok bool, err error) {
			err = k.QueryRow(ctx, "SELECT PG_TERMINATE_BACKEND($1::int4) AS gone", pgx.QueryExecModeExec, fmt.Sprint(pid)).Scan(&ok)
			return
		}},
		{"unnest of an array parameter", func(k *pgx.Conn, pid uint32) (ok bool, err error) {
			err = k.QueryRow(ctx, "select pg_terminate_backend(n) from unnest($1::int[]) n", []uint32{pid}).Scan(&ok)
			return
		}},
	}
	for _, f := range forms {
		t.Run(f.name, func(t *testing.T) {
			killer, victim := h.ninja(t), h.ninja(t)
			pid := victim.PgConn().PID()
			query := fmt.Sprintf("select pg_sleep(10) /* %s */", f.name)
			done := make(chan error, 1)
			go func() { _, err := victim.Exec(ctx, query); done <- err }()
			waitSleeping(t, ctx, direct, query)
			ok, err := f.call(killer, pid)
			if err != nil || !ok {
				t.Fatalf("terminate: %v, %v", ok, err)
			}
			select {
			case err := <-done:
				if sqlstate(err) != "57P01" {
					t.Fatalf("victim got %v, want 57P01", err)
				}
			case <-time.After(5 * time.Second):
				t.Fatal("the victim's query ran on")
			}
			if !victim.IsClosed() {
				t.Error("the victim's connection is still open")
			}
			// Its server connection was abandoned: the sleep stops on the
			// server, not 10 s later.
			for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(50 * time.Millisecond) {
				var n int
				if err := direct.QueryRow(ctx, "select count(*) from pg_stat_activity where query = $1", query).Scan(&n); err != nil {
					t.Fatal(err)
				}
				if n == 0 {
					break
				}
				if time.Now().After(deadline) {
					t.Fatal("the terminated client's query still runs on the server")
				}
			}
			// The killer's own connection is fine.
			var one int
			if err := killer.QueryRow(ctx, "select 1").Scan(&one); err != nil || one != 1 {
				t.Fatalf("killer after terminate: %v, %v", one, err)
			}
		})
	}

	t.Run("idle client", func(t *testing.T) {
		killer, victim := h.ninja(t), h.ninja(t)
		var ok bool
		if err := killer.QueryRow(ctx, "select pg_terminate_backend($1)", victim.PgConn().PID()).Scan(&ok); err != nil || !ok {
			t.Fatalf("terminate: %v, %v", ok, err)
		}
		if _, err := victim.Exec(ctx, "select 1"); err == nil {
			t.Fatal("the terminated client still answers")
		}
	})

	t.Run("cancel", func(t *testing.T) {
		killer, victim := h.ninja(t), h.ninja(t)
		query := "select pg_sleep(10) /* cancel */"
		done := make(chan error, 1)
		go func() { _, err := victim.Exec(ctx, query); done <- err }()
		waitSleeping(t, ctx, direct, query)
		var ok bool
		if err := killer.QueryRow(ctx, "select pg_cancel_backend($1)", victim.PgConn().PID()).Scan(&ok); err != nil || !ok {
			t.Fatalf("cancel: %v, %v", ok, err)
		}
		if err := <-done; sqlstate(err) != "57014" {
			t.Fatalf("victim got %v, want 57014", err)
		}
		var two int
		if err := victim.QueryRow(ctx, "select 2").Scan(&two); err != nil || two != 2 {
			t.Fatalf("victim after cancel: %v, %v", two, err)
		}
	})

	t.Run("no such client", func(t *testing.T) {
		var n notices
		killer := connectNoticed(t, h.dsn("ninja", "ninja", "ai_ninja"), &n)
		victim := h.ninja(t)
		pid := victim.PgConn().PID()
		_ = victim.Close(ctx)
		// The session ends just after the client's Terminate.
		var ok bool
		for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(20 * time.Millisecond) {
			if err := killer.QueryRow(ctx, "select pg_terminate_backend($1)", pid).Scan(&ok); err != nil {
				t.Fatal(err)
			}
			if !ok || time.Now().After(deadline) {
				break
			}
		}
		got := describeNotices(n.take())
		if ok || len(got) == 0 || got[len(got)-1] != fmt.Sprintf("WARNING 01000 PID %d is not a PostgreSQL backend process", pid) {
			t.Fatalf("gone client: %v, notices %v", ok, got)
		}
	})

	t.Run("permission", func(t *testing.T) {
		super := h.connect(t, h.env.SuperUser, h.env.SuperPass, "ai_ninja")
		ninja := h.ninja(t)
		var ok bool
		err := ninja.QueryRow(ctx, "select pg_terminate_backend($1)", super.PgConn().PID()).Scan(&ok)
		if sqlstate(err) != "42501" {
			t.Fatalf("ninja terminating a superuser's client: %v, %v; want 42501", ok, err)
		}
		if err := super.Ping(ctx); err != nil {
			t.Fatalf("the superuser's client was ended: %v", err)
		}
		// trusty logs in to the server as ninja, so it may.
		trusty := h.connect(t, "trusty", "", "ai_ninja")
		if err := trusty.QueryRow(ctx, "select pg_terminate_backend($1)", ninja.PgConn().PID()).Scan(&ok); err != nil || !ok {
			t.Fatalf("trusty terminating ninja's client: %v, %v", ok, err)
		}
	})

	t.Run("own process", func(t *testing.T) {
		c := h.ninja(t)
		_, err := c.Exec(ctx, fmt.Sprintf("select pg_terminate_backend(%d)", c.PgConn().PID()))
		if sqlstate(err) != "57P01" {
			t.Fatalf("terminating itself: %v, want 57P01", err)
		}
	})

	t.Run("a server's process is the server's", func(t *testing.T) {
		c := h.ninja(t)
		var ok bool
		// No backend has process ID 1.
		if err := c.QueryRow(ctx, "select pg_cancel_backend(1)").Scan(&ok); err != nil || ok {
			t.Fatalf("pg_cancel_backend(1): %v, %v", ok, err)
		}
	})
}

// TestSignalAnswerMatchesPostgres sends the same signals to the proxy,
// for its clients' process IDs, and to PostgreSQL, for its backends', and
// compares the answers message by message: a batch with every message a
// signal may come with, a simple query, a refusal and a cancel of the
// client's own query.
func TestSignalAnswerMatchesPostgres(t *testing.T) {
	h := startProxy(t, fmt.Sprintf(txnMode, 4, "30s"))
	directAs := func(user, pass string) *pgx.Conn {
		c, err := pgx.Connect(context.Background(), fmt.Sprintf("postgres://%s:%s@%s/ai_ninja?sslmode=disable", user, pass, h.env.Primary))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = c.Close(context.Background()) })
		return c
	}
	batch := func(format int16) func(*pgproto3.Frontend, uint32) {
		return func(fe *pgproto3.Frontend, pid uint32) {
			fe.Send(&pgproto3.Parse{Query: "select pg_cancel_backend($1) as c"})
			fe.Send(&pgproto3.Describe{ObjectType: 'S'})
			fe.Send(&pgproto3.Bind{ParameterFormatCodes: []int16{1}, Parameters: [][]byte{binary.BigEndian.AppendUint32(nil, pid)},
				ResultFormatCodes: []int16{format}})
			fe.Send(&pgproto3.Describe{ObjectType: 'P'})
			fe.Send(&pgproto3.Execute{})
			fe.Send(&pgproto3.Sync{})
		}
	}
	query := func(sql string) func(*pgproto3.Frontend, uint32) {
		return func(fe *pgproto3.Frontend, pid uint32) { fe.Send(&pgproto3.Query{String: fmt.Sprintf(sql, pid)}) }
	}
	super, ninja := [2]string{h.env.SuperUser, h.env.SuperPass}, [2]string{"ninja", "ninja"}
	tests := []struct {
		name         string
		caller, whom [2]string
		self         bool
		send         func(*pgproto3.Frontend, uint32)
	}{
		{"batch, text result", ninja, ninja, false, batch(0)},
		{"batch, binary result", ninja, ninja, false, batch(1)},
		{"simple query", super, ninja, false, query("select pg_terminate_backend(%d)")},
		{"refused, simple query", ninja, super, false, query("select pg_terminate_backend(%d)")},
		{"refused, batch", ninja, super, false, batch(0)},
		{"cancel of its own query", ninja, ninja, true, query("select pg_cancel_backend(%d)")},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			run := func(caller, whom *pgx.Conn) []string {
				t.Helper()
				if tt.self {
					whom = caller
				}
				fe := caller.PgConn().Frontend()
				tt.send(fe, whom.PgConn().PID())
				if err := fe.Flush(); err != nil {
					t.Fatal(err)
				}
				var got []string
				for {
					msg, err := fe.Receive()
					if err != nil {
						t.Fatal(err)
					}
					switch m := msg.(type) {
					case *pgproto3.ErrorResponse:
						got = append(got, fmt.Sprintf("ErrorResponse %s %s %s / %s", m.Severity, m.Code, m.Message, m.Detail))
					case *pgproto3.NoticeResponse:
						got = append(got, fmt.Sprintf("NoticeResponse %s %s %s", m.Severity, m.Code, m.Message))
					default:
						got = append(got, fmt.Sprintf("%T %+v", msg, msg))
					}
					if _, ok := msg.(*pgproto3.ReadyForQuery); ok {
						return got
					}
				}
			}
			got := run(h.connect(t, tt.caller[0], tt.caller[1], "ai_ninja"), h.connect(t, tt.whom[0], tt.whom[1], "ai_ninja"))
			want := run(directAs(tt.caller[0], tt.caller[1]), directAs(tt.whom[0], tt.whom[1]))
			if !slices.Equal(got, want) {
				t.Errorf("through the proxy\n%s\nPostgreSQL\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
			}
		})
	}
}
