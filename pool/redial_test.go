package pool

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/ai-ninja/pgninja/internal/pgerr"
	"github.com/jackc/pgx/v5/pgconn"
)

// A server being restarted refuses connections for a moment; an acquire
// waits that out (within its timeout) instead of failing, and any other
// refusal still fails at once.
func TestAcquireRedialsARestartingServer(t *testing.T) {
	refused := func() error {
		// A real refusal: a port that was just listening and is closed.
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		addr := l.Addr().String()
		l.Close()
		_, err = net.Dial("tcp", addr)
		if !errors.Is(err, syscall.ECONNREFUSED) {
			t.Fatalf("dialling a closed port: %v", err)
		}
		return pgerr.Wrap(err, pgerr.SeverityError, pgerr.ConnectionFailure, "could not connect")
	}()
	closedMidLogin := pgerr.Wrap(fmt.Errorf("receive message failed: %w", io.ErrUnexpectedEOF), pgerr.SeverityError, pgerr.ConnectionFailure, "could not connect")
	shuttingDown := &pgconn.PgError{Severity: "FATAL", Code: pgerr.CannotConnectNow, Message: "the database system is shutting down"}
	badPassword := &pgconn.PgError{Severity: "FATAL", Code: "28P01", Message: "password authentication failed"}

	tests := []struct {
		name     string
		err      error
		failures int32 // dials that fail before the server is back
		timeout  time.Duration
		wantCode string // "" means the acquire succeeds
		wantDial int32  // dials attempted
	}{
		{"connection refused, then back", refused, 2, 5 * time.Second, "", 3},
		{"shutting down, then back", shuttingDown, 3, 5 * time.Second, "", 4},
		{"closed mid-login, then back", closedMidLogin, 1, 5 * time.Second, "", 2},
		{"still down at the timeout", shuttingDown, 1000, 500 * time.Millisecond, pgerr.CannotConnectNow, 3},
		{"wrong password fails at once", badPassword, 1000, 5 * time.Second, "28P01", 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var dials, ok atomic.Int32
			good := fakeDial(&ok, nil)
			dial := func(ctx context.Context, tg Target) (*Conn, error) {
				if dials.Add(1) <= tt.failures {
					return nil, tt.err
				}
				return good(ctx, tg)
			}
			o := opts(1)
			o.AcquireTimeout = tt.timeout
			p := New(Target{}, o, dial)
			c, err := p.Acquire(context.Background())
			if tt.wantCode == "" && err != nil {
				t.Fatalf("acquire across a restart: %v", err)
			}
			if tt.wantCode != "" && pgerr.SQLState(err) != tt.wantCode {
				t.Fatalf("want %s, got %v", tt.wantCode, err)
			}
			if got := dials.Load(); got != tt.wantDial {
				t.Fatalf("%d dials, want %d", got, tt.wantDial)
			}
			if c != nil {
				p.Release(c, false)
			}
		})
	}
}

// TryAcquire says at once that it has nothing, even when the server is
// only restarting: a login checking its settings does not wait for one.
func TestTryAcquireDoesNotWaitForARestartingServer(t *testing.T) {
	var dials atomic.Int32
	dial := func(ctx context.Context, tg Target) (*Conn, error) {
		dials.Add(1)
		return nil, &pgconn.PgError{Severity: "FATAL", Code: pgerr.CannotConnectNow, Message: "the database system is starting up"}
	}
	o := opts(1)
	o.AcquireTimeout = 5 * time.Second
	p := New(Target{}, o, dial)
	if _, err := p.TryAcquire(context.Background()); pgerr.SQLState(err) != pgerr.CannotConnectNow {
		t.Fatalf("want the server's 57P03, got %v", err)
	}
	if n := dials.Load(); n != 1 {
		t.Fatalf("TryAcquire dialled %d times, want once", n)
	}
}
