package pool

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"strings"
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
		wantCode string        // "" means the acquire succeeds
		wantDial int32         // dials attempted
		restart  time.Duration // restart_wait, when not the timeout
	}{
		{"connection refused, then back", refused, 2, 5 * time.Second, "", 3, 0},
		{"shutting down, then back", shuttingDown, 3, 5 * time.Second, "", 4, 0},
		{"closed mid-login, then back", closedMidLogin, 1, 5 * time.Second, "", 2, 0},
		{"still down at the timeout", shuttingDown, 1000, 500 * time.Millisecond, pgerr.CannotConnectNow, 3, 0},
		{"wrong password fails at once", badPassword, 1000, 5 * time.Second, "28P01", 1, 0},
		{"still down after restart_wait", shuttingDown, 1000, time.Minute, pgerr.CannotConnectNow, 3, 500 * time.Millisecond},
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
			o.RestartWait = tt.timeout
			if tt.restart != 0 {
				o.RestartWait = tt.restart
			}
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

// Callers that do not wait for a restarting server are told at once:
// TryAcquire (a login checking its settings) and AcquireIfUp (a read
// routed to a replica, which has the primary to go to).
func TestAcquireWithoutWaitingForARestartingServer(t *testing.T) {
	tests := []struct {
		name    string
		acquire func(*Pool, context.Context) (*Conn, error)
	}{
		{"TryAcquire", (*Pool).TryAcquire},
		{"AcquireIfUp", (*Pool).AcquireIfUp},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var dials atomic.Int32
			dial := func(ctx context.Context, tg Target) (*Conn, error) {
				dials.Add(1)
				return nil, &pgconn.PgError{Severity: "FATAL", Code: pgerr.CannotConnectNow, Message: "the database system is starting up"}
			}
			o := opts(1)
			o.AcquireTimeout = time.Minute
			o.RestartWait = time.Minute
			p := New(Target{}, o, dial)
			if _, err := tt.acquire(p, context.Background()); pgerr.SQLState(err) != pgerr.CannotConnectNow {
				t.Fatalf("want the server's 57P03, got %v", err)
			}
			if n := dials.Load(); n != 1 {
				t.Fatalf("dialled %d times, want once", n)
			}
		})
	}
}

// A server that stays down holds requests for RestartWait from its first
// refusal, not for each request's acquire timeout. After that, requests
// fail at once with its refusal; one dial per pause finds out whether it
// is back, and once it is, a later outage is waited for afresh.
func TestServerDownPastRestartWaitFailsAtOnce(t *testing.T) {
	var dials, ok atomic.Int32
	var down atomic.Bool
	down.Store(true)
	good := fakeDial(&ok, nil)
	dial := func(ctx context.Context, tg Target) (*Conn, error) {
		dials.Add(1)
		if down.Load() {
			return nil, &pgconn.PgError{Severity: "FATAL", Code: pgerr.CannotConnectNow, Message: "the database system is starting up"}
		}
		return good(ctx, tg)
	}
	o := opts(2)
	o.AcquireTimeout = time.Minute
	o.RestartWait = 300 * time.Millisecond
	p := New(Target{}, o, dial)

	start := time.Now()
	_, err := p.Acquire(context.Background())
	if pgerr.SQLState(err) != pgerr.CannotConnectNow {
		t.Fatalf("first acquire on a down server: want 57P03, got %v", err)
	}
	if waited := time.Since(start); waited > 20*time.Second {
		t.Fatalf("waited %v for a down server; restart_wait is %v", waited, o.RestartWait)
	}

	before := dials.Load()
	_, err = p.Acquire(context.Background())
	var pe *pgerr.Error
	if !errors.As(err, &pe) || pe.Code != pgerr.CannotConnectNow || pe.Severity != pgerr.SeverityError {
		t.Fatalf("acquire right after: want the lasting refusal as an ERROR 57P03, got %#v", err)
	}
	if n := dials.Load() - before; n != 0 {
		t.Fatalf("an acquire right after a refusal dialled %d times, want none", n)
	}

	time.Sleep(redialPause)
	before = dials.Load()
	if _, err := p.Acquire(context.Background()); pgerr.SQLState(err) != pgerr.CannotConnectNow {
		t.Fatalf("acquire a pause later: want 57P03, got %v", err)
	}
	if n := dials.Load() - before; n != 1 {
		t.Fatalf("an acquire a pause later dialled %d times, want once", n)
	}

	if st := p.Stats(); st.DownSince.IsZero() || !strings.Contains(st.LastRefusal, "57P03") {
		t.Fatalf("stats of a down server: down since %v, last refusal %q", st.DownSince, st.LastRefusal)
	}

	down.Store(false)
	time.Sleep(redialPause)
	c, err := p.Acquire(context.Background())
	if err != nil {
		t.Fatalf("server back: %v", err)
	}
	p.Release(c, false)
	if st := p.Stats(); !st.DownSince.IsZero() || st.LastRefusal != "" {
		t.Fatalf("stats of a server back up: down since %v, last refusal %q", st.DownSince, st.LastRefusal)
	}

	// A new outage is waited out again: the server is back within
	// restart_wait of its first refusal.
	down.Store(true)
	go func() { time.Sleep(2 * redialPause); down.Store(false) }()
	c2, err := p.Acquire(context.Background())
	if err != nil {
		t.Fatalf("holding the only idle one, an acquire across a new restart: %v", err)
	}
	p.Release(c2, false)
}

// A client queued behind another that is dialling a down server is not
// told the pool was full (53300) when its wait runs out, but why.
func TestQueuedBehindADownServerGetsItsRefusal(t *testing.T) {
	var dials atomic.Int32
	dial := func(ctx context.Context, tg Target) (*Conn, error) {
		if dials.Add(1) == 2 {
			// The second login hangs, holding the only slot, while the
			// other client's wait runs out.
			time.Sleep(time.Second)
		}
		return nil, &pgconn.PgError{Severity: "FATAL", Code: pgerr.CannotConnectNow, Message: "the database system is starting up"}
	}
	o := opts(1)
	o.AcquireTimeout = 600 * time.Millisecond
	o.RestartWait = time.Minute
	p := New(Target{}, o, dial)
	first := make(chan error, 1)
	go func() {
		_, err := p.Acquire(context.Background())
		first <- err
	}()
	for dials.Load() < 2 {
		time.Sleep(time.Millisecond)
	}
	_, err := p.Acquire(context.Background())
	if pgerr.SQLState(err) != pgerr.CannotConnectNow {
		t.Fatalf("queued behind a down server: want 57P03, got %v", err)
	}
	if err := <-first; pgerr.SQLState(err) != pgerr.CannotConnectNow {
		t.Fatalf("the one dialling: want 57P03, got %v", err)
	}
}
