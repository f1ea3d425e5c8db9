package pool

import (
	"bufio"
	"context"
	"net"
	"testing"
	"time"
)

// TestStatsCountOpeningTestingAndDueChecks: SHOW POOLS' sv_login,
// sv_tested and sv_used come from Stats' Opening (a dial under way),
// Testing (a reset under way) and IdleToCheck (idle past
// HealthCheckAfter).
func TestStatsCountOpeningTestingAndDueChecks(t *testing.T) {
	dialing := make(chan struct{})
	peers := make(chan net.Conn, 1)
	dial := func(ctx context.Context, _ Target) (*Conn, error) {
		select {
		case <-dialing:
		case <-ctx.Done():
			return nil, ctx.Err()
		}
		a, b := net.Pipe()
		peers <- b
		return &Conn{Conn: a, R: bufio.NewReader(a), W: bufio.NewWriter(a), TxStatus: 'I',
			created: time.Now(), idleSince: time.Now(), Params: map[string]string{}}, nil
	}
	o := opts(2)
	o.ResetQuery, o.HealthCheckAfter = "DISCARD ALL", 50*time.Millisecond
	p := New(Target{}, o, dial)
	wait := func(what string, cond func(Stats) bool) {
		t.Helper()
		for deadline := time.Now().Add(2 * time.Second); !cond(p.Stats()); time.Sleep(time.Millisecond) {
			if time.Now().After(deadline) {
				t.Fatalf("timed out waiting for %s: %+v", what, p.Stats())
			}
		}
	}

	got := acquireAsync(t, p)
	wait("a dial under way", func(s Stats) bool { return s.Opening == 1 })
	close(dialing)
	c := <-got
	server := <-peers
	if s := p.Stats(); s.Opening != 0 || s.Total != 1 {
		t.Fatalf("after the dial: %+v", s)
	}

	// The reset waits for the server's answer: Testing meanwhile. The
	// server hangs up instead, and the connection is closed.
	released := make(chan struct{})
	go func() { p.Release(c, true); close(released) }()
	wait("a reset under way", func(s Stats) bool { return s.Testing == 1 })
	server.Close()
	<-released
	if s := p.Stats(); s.Testing != 0 || s.Total != 0 {
		t.Fatalf("after the failed reset: %+v", s)
	}

	// An idle connection past HealthCheckAfter is due a check.
	c = mustAcquire(t, p)
	<-peers
	p.Release(c, false)
	if s := p.Stats(); s.Idle != 1 || s.IdleToCheck != 0 {
		t.Fatalf("just released: %+v", s)
	}
	wait("the idle connection due a check", func(s Stats) bool { return s.IdleToCheck == 1 })
}
