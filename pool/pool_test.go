package pool

import (
	"bufio"
	"context"
	"errors"
	"net"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ai-ninja/pgninja/internal/pgerr"
	"github.com/ai-ninja/pgninja/internal/rawconn"
)

// fakeDial returns connections over net.Pipe that never do I/O: the
// tests below only exercise lending, which needs none.
func fakeDial(count *atomic.Int32, fail *atomic.Bool) DialFunc {
	return func(ctx context.Context, t Target) (*Conn, error) {
		if fail != nil && fail.Load() {
			return nil, pgerr.New(pgerr.ConnectionFailure, "server down")
		}
		count.Add(1)
		a, b := net.Pipe()
		go func() { <-ctx.Done(); b.Close() }()
		return &Conn{Conn: a, R: bufio.NewReader(a), W: bufio.NewWriter(a), TxStatus: 'I',
			created: time.Now(), idleSince: time.Now(), Params: map[string]string{"server_version": "15"}}, nil
	}
}

// mustAcquire lends a connection from p or fails the test.
func mustAcquire(t *testing.T, p *Pool) *Conn {
	t.Helper()
	c, err := p.Acquire(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// acquireAsync starts an Acquire; the connection it gets arrives on the
// channel.
func acquireAsync(t *testing.T, p *Pool) <-chan *Conn {
	got := make(chan *Conn, 1)
	go func() {
		c, err := p.Acquire(context.Background())
		if err != nil {
			t.Error(err)
		}
		got <- c
	}()
	return got
}

// queuedAcquire starts an Acquire that must wait, and returns once it is
// queued; the connection it gets arrives on the channel.
func queuedAcquire(t *testing.T, p *Pool) <-chan *Conn {
	t.Helper()
	queued := p.Stats().Waiting + 1
	got := acquireAsync(t, p)
	for p.Stats().Waiting != queued {
		time.Sleep(time.Millisecond)
	}
	return got
}

func opts(max int) Options {
	return Options{MaxSize: max, AcquireTimeout: 200 * time.Millisecond, ReserveTimeout: time.Hour,
		IdleTimeout: time.Hour, MaxLifetime: time.Hour, HealthCheckAfter: time.Hour}
}

func TestAcquireTimeoutIs53300(t *testing.T) {
	var n atomic.Int32
	p := New(Target{}, opts(1), fakeDial(&n, nil))
	c, err := p.Acquire(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	_, err = p.Acquire(context.Background())
	if pgerr.SQLState(err) != pgerr.TooManyConnections {
		t.Fatalf("want 53300, got %v", err)
	}
	if d := time.Since(start); d < 150*time.Millisecond {
		t.Fatalf("gave up after %v", d)
	}
	p.Release(c, false)
	if c2, err := p.Acquire(context.Background()); err != nil || c2 != c {
		t.Fatalf("reuse: %v %v", c2, err)
	}
	if s := p.Stats(); s.Timeouts != 1 || s.Total != 1 || n.Load() != 1 {
		t.Fatalf("stats %+v dials %d", s, n.Load())
	}
}

func TestTryAcquireNeverWaits(t *testing.T) {
	var n atomic.Int32
	o := opts(1)
	o.AcquireTimeout = 5 * time.Second
	p := New(Target{}, o, fakeDial(&n, nil))
	c, err := p.TryAcquire(context.Background())
	if err != nil || c == nil {
		t.Fatalf("an empty pool lent nothing: %v", err)
	}
	start := time.Now()
	if c2, err := p.TryAcquire(context.Background()); c2 != nil || err != nil {
		t.Fatalf("a full pool lent %v, %v", c2, err)
	}
	if d := time.Since(start); d > time.Second {
		t.Fatalf("TryAcquire waited %v", d)
	}
	p.Release(c, false)
	if c2, err := p.TryAcquire(context.Background()); err != nil || c2 != c {
		t.Fatalf("the idle connection was not lent: %v %v", c2, err)
	}
	if s := p.Stats(); s.Acquires != 2 || s.Waits != 0 || s.Timeouts != 0 {
		t.Fatalf("stats %+v", s)
	}
}

func TestAcquireIdleLendsThatConnection(t *testing.T) {
	var n atomic.Int32
	ctx := context.Background()
	p := New(Target{}, opts(2), fakeDial(&n, nil))
	a, b := mustAcquire(t, p), mustAcquire(t, p)
	if got := p.AcquireIdle(ctx, a); got != nil {
		t.Fatal("a lent connection was lent again")
	}
	p.Release(a, false)
	p.Release(b, false) // b on top
	if got := p.AcquireIdle(ctx, a); got != a {
		t.Fatalf("AcquireIdle(a) = %p, want a (%p)", got, a)
	}
	if got := New(Target{}, opts(2), fakeDial(&n, nil)).AcquireIdle(ctx, b); got != nil {
		t.Fatal("another pool lent this pool's connection")
	}
	if got := mustAcquire(t, p); got != b {
		t.Fatal("the other idle connection was not left in place")
	}
	if s := p.Stats(); s.Acquires != 4 || s.Waits != 0 {
		t.Fatalf("stats %+v", s)
	}
}

func TestWaitersServedInOrder(t *testing.T) {
	var n atomic.Int32
	o := opts(1)
	o.AcquireTimeout = 5 * time.Second
	p := New(Target{}, o, fakeDial(&n, nil))
	c, _ := p.Acquire(context.Background())
	order := make(chan int, 3)
	for i := 0; i < 3; i++ {
		go func(i int) {
			c, err := p.Acquire(context.Background())
			if err != nil {
				t.Error(err)
				return
			}
			order <- i
			time.Sleep(10 * time.Millisecond)
			p.Release(c, false)
		}(i)
		// Let each waiter queue before the next one.
		for p.Stats().Waiting != i+1 {
			time.Sleep(time.Millisecond)
		}
	}
	p.Release(c, false)
	for want := 0; want < 3; want++ {
		if got := <-order; got != want {
			t.Fatalf("served %d before %d", got, want)
		}
	}
}

func TestBrokenConnectionPassesItsSlot(t *testing.T) {
	var n atomic.Int32
	o := opts(1)
	o.AcquireTimeout = 5 * time.Second
	p := New(Target{}, o, fakeDial(&n, nil))
	c, _ := p.Acquire(context.Background())
	got := queuedAcquire(t, p)
	c.MarkBroken()
	p.Release(c, false)
	c2 := <-got
	if c2 == nil || c2 == c || n.Load() != 2 {
		t.Fatalf("waiter did not get a fresh connection (dials %d)", n.Load())
	}
	if s := p.Stats(); s.Total != 1 || s.Closed != 1 {
		t.Fatalf("stats %+v", s)
	}
}

func TestReserveOpensAfterReserveTimeout(t *testing.T) {
	var n atomic.Int32
	o := opts(1)
	o.AcquireTimeout = 5 * time.Second
	o.ReserveSize = 1
	o.ReserveTimeout = 50 * time.Millisecond
	p := New(Target{}, o, fakeDial(&n, nil))
	if _, err := p.Acquire(context.Background()); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	if _, err := p.Acquire(context.Background()); err != nil {
		t.Fatal(err)
	}
	if d := time.Since(start); d < 40*time.Millisecond || p.Stats().Total != 2 {
		t.Fatalf("reserve after %v, total %d", d, p.Stats().Total)
	}
	// The reserve is used up: the next waiter times out.
	o.AcquireTimeout = 100 * time.Millisecond
	p.SetOptions(o)
	if _, err := p.Acquire(context.Background()); pgerr.SQLState(err) != pgerr.TooManyConnections {
		t.Fatalf("want 53300 past the reserve, got %v", err)
	}
}

func TestDialFailureFreesSlot(t *testing.T) {
	var n atomic.Int32
	var fail atomic.Bool
	fail.Store(true)
	p := New(Target{}, opts(1), fakeDial(&n, &fail))
	if _, err := p.Acquire(context.Background()); pgerr.SQLState(err) != pgerr.ConnectionFailure {
		t.Fatalf("want 08006, got %v", err)
	}
	fail.Store(false)
	if _, err := p.Acquire(context.Background()); err != nil {
		t.Fatalf("slot leaked by a failed dial: %v", err)
	}
}

func TestCloseWakesWaiters(t *testing.T) {
	var n atomic.Int32
	o := opts(1)
	o.AcquireTimeout = 5 * time.Second
	p := New(Target{}, o, fakeDial(&n, nil))
	_, _ = p.Acquire(context.Background())
	errc := make(chan error)
	go func() { _, err := p.Acquire(context.Background()); errc <- err }()
	for p.Stats().Waiting != 1 {
		time.Sleep(time.Millisecond)
	}
	p.Close()
	if err := <-errc; !errors.Is(err, ErrClosed) {
		t.Fatalf("want ErrClosed, got %v", err)
	}
}

func TestMaintainTrimsIdleToMin(t *testing.T) {
	var n atomic.Int32
	o := opts(4)
	o.MinSize = 1
	o.IdleTimeout = time.Millisecond
	p := New(Target{}, o, fakeDial(&n, nil))
	var cs []*Conn
	for i := 0; i < 3; i++ {
		c, _ := p.Acquire(context.Background())
		cs = append(cs, c)
	}
	for _, c := range cs {
		p.Release(c, false)
	}
	time.Sleep(5 * time.Millisecond)
	p.Maintain(context.Background(), time.Now())
	if s := p.Stats(); s.Total != 1 || s.Idle != 1 {
		t.Fatalf("after maintain: %+v", s)
	}
}

// TestMaintainClosesIdleOverSize: a pool made smaller than the idle
// connections it holds closes the surplus at its next upkeep, however
// recently they were used, and keeps the most recently used ones.
func TestMaintainClosesIdleOverSize(t *testing.T) {
	var n atomic.Int32
	o := opts(3)
	o.MinSize = 3
	p := New(Target{}, o, fakeDial(&n, nil))
	p.Maintain(context.Background(), time.Now())
	if s := p.Stats(); s.Total != 3 || s.Idle != 3 {
		t.Fatalf("before: %+v, want three idle", s)
	}
	newest := mustAcquire(t, p)
	p.Release(newest, false)
	o.MinSize, o.MaxSize = 1, 1
	p.SetOptions(o)
	p.Maintain(context.Background(), time.Now())
	if s := p.Stats(); s.Total != 1 || s.Idle != 1 || s.Closed != 2 {
		t.Fatalf("after shrinking to one: %+v, want one idle and two closed", s)
	}
	if c := mustAcquire(t, p); c != newest {
		t.Fatal("the pool kept a less recently used connection")
	}
}

// TestMaintainOpensNothingWhileHeld: a held pool (PAUSE) is not filled to
// MinSize, and is once the hold ends.
func TestMaintainOpensNothingWhileHeld(t *testing.T) {
	var n atomic.Int32
	o := opts(4)
	o.MinSize = 2
	p := New(Target{}, o, fakeDial(&n, nil))
	p.Hold()
	p.Maintain(context.Background(), time.Now())
	if s := p.Stats(); s.Total != 0 || n.Load() != 0 {
		t.Fatalf("held pool after maintain: %+v, %d dials; want none", s, n.Load())
	}
	p.Unhold()
	p.Maintain(context.Background(), time.Now())
	if s := p.Stats(); s.Total != 2 || s.Idle != 2 {
		t.Fatalf("after the hold: %+v, want MinSize idle connections", s)
	}
}

// tcpDial returns connections over loopback TCP and hands the server ends
// to the test, which may close them to play a server that went away.
func tcpDial(t *testing.T, servers chan<- net.Conn) DialFunc {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	return func(ctx context.Context, _ Target) (*Conn, error) {
		nc, err := net.Dial("tcp", ln.Addr().String())
		if err != nil {
			return nil, err
		}
		srv, err := ln.Accept()
		if err != nil {
			return nil, err
		}
		servers <- srv
		nc = rawconn.Wrap(nc)
		return &Conn{Conn: nc, R: bufio.NewReader(nc), W: bufio.NewWriter(nc), TxStatus: 'I',
			created: time.Now(), idleSince: time.Now(), Params: map[string]string{}}, nil
	}
}

func TestServerClosedIdleConnectionIsNotLent(t *testing.T) {
	servers := make(chan net.Conn, 4)
	p := New(Target{}, opts(2), tcpDial(t, servers))
	c, err := p.Acquire(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	p.Release(c, false)
	// The server sends its last words and hangs up while c sits idle.
	srv := <-servers
	srv.Write([]byte("E"))
	srv.Close()
	time.Sleep(quietCheckAfter + 20*time.Millisecond)
	c2, err := p.Acquire(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if c2 == c {
		t.Fatal("lent a connection the server had closed")
	}
	if s := p.Stats(); s.Dials != 2 || s.Closed != 1 {
		t.Fatalf("stats %+v: want the closed connection dropped and a new one dialled", s)
	}
	// A connection that is merely idle is lent again.
	p.Release(c2, false)
	time.Sleep(quietCheckAfter + 20*time.Millisecond)
	c3, err := p.Acquire(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	defer p.Release(c3, false)
	if c3 != c2 {
		t.Fatal("a healthy idle connection was not reused")
	}
}

// A server that goes down takes its idle connections with it. Once one
// connection has broken, the others are peeked at before they are lent,
// even moments after they went back.
func TestBrokenConnectionMakesIdleOnesSuspect(t *testing.T) {
	servers := make(chan net.Conn, 4)
	p := New(Target{}, opts(3), tcpDial(t, servers))
	a, b := mustAcquire(t, p), mustAcquire(t, p)
	srvA, srvB := <-servers, <-servers
	p.Release(b, false)
	// The server goes down: both connections are closed by it.
	srvA.Close()
	srvB.Close()
	time.Sleep(5 * time.Millisecond) // the FIN arrives; b has idled < quietCheckAfter
	a.MarkBroken()
	p.Release(a, false)
	c, err := p.Acquire(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if c == b {
		t.Fatal("lent an idle connection the server had closed, right after another broke")
	}
	if s := p.Stats(); s.Closed != 2 || s.Dials != 3 {
		t.Fatalf("stats %+v: want both dead connections dropped and a new one dialled", s)
	}
}

// A target naming another server closes the connections to the old one:
// the idle ones at once, a lent one when it comes back. A change that
// reaches the same server (the connect timeout) closes nothing.
func TestSetTargetRetiresConnectionsToTheOldServer(t *testing.T) {
	var n atomic.Int32
	var dialled atomic.Value
	dial := func(ctx context.Context, tg Target) (*Conn, error) {
		dialled.Store(tg.Host)
		c, err := fakeDial(&n, nil)(ctx, tg)
		if c != nil {
			c.Params = map[string]string{"server_version": tg.Host}
		}
		return c, err
	}
	p := New(Target{Host: "old", Port: 1}, opts(3), dial)
	idle, lent := mustAcquire(t, p), mustAcquire(t, p)
	p.Release(idle, false)
	if r := p.Retiring(); r != 0 {
		t.Fatalf("Retiring before any move = %d, want 0", r)
	}

	p.SetTarget(Target{Host: "old", Port: 1, ConnectTimeout: time.Second})
	if st := p.Stats(); st.Idle != 1 || st.Closed != 0 {
		t.Fatalf("same server, new connect timeout: %+v, want the idle connection kept", st)
	}
	p.SetTarget(Target{Host: "new", Port: 1})
	if st := p.Stats(); st.Idle != 0 || st.Closed != 1 || st.Total != 1 {
		t.Fatalf("after the move: %+v, want the idle connection closed and the lent one open", st)
	}
	if r := p.Retiring(); r != 1 {
		t.Fatalf("Retiring after the move = %d, want the lent connection", r)
	}
	p.Release(lent, false)
	if st := p.Stats(); st.Idle != 0 || st.Closed != 2 || st.Total != 0 {
		t.Fatalf("lent connection back: %+v, want it closed", st)
	}
	if r := p.Retiring(); r != 0 {
		t.Fatalf("Retiring once it is back = %d, want 0", r)
	}
	params, err := p.Params(context.Background())
	if err != nil || params["server_version"] != "new" {
		t.Errorf("Params after the move = %v, %v: want the new server's", params, err)
	}
	c := mustAcquire(t, p)
	if got := dialled.Load(); got != "new" || n.Load() != 3 {
		t.Errorf("next connection dialled %v (%d dials), want a third dial to new", got, n.Load())
	}
	p.Release(c, false)
	if st := p.Stats(); st.Idle != 1 {
		t.Errorf("a connection to the new server went back: %+v, want it idle", st)
	}
}

// TestSetOptionsResizesInPlace: a reload that enlarges a pool lets a
// client already queued dial at once; one that shrinks it closes the
// connections over the new size as they come back, and no queued client
// dials past it.
func TestSetOptionsResizesInPlace(t *testing.T) {
	var n atomic.Int32
	o := opts(1)
	o.AcquireTimeout = 5 * time.Second
	p := New(Target{}, o, fakeDial(&n, nil))
	a := mustAcquire(t, p)
	got := queuedAcquire(t, p)
	o.MaxSize = 2
	p.SetOptions(o)
	b := <-got // while a is still lent
	if b == nil || b == a || n.Load() != 2 {
		t.Fatalf("the queued client got %v after the pool grew (dials %d)", b, n.Load())
	}

	o.MaxSize = 1
	p.SetOptions(o)
	got = queuedAcquire(t, p)
	p.Release(a, false) // over the new size: closed, and nobody dials in its place
	if s := p.Stats(); s.Total != 1 || s.Closed != 1 || s.Waiting != 1 || n.Load() != 2 {
		t.Fatalf("after a release over the new size: %+v, dials %d", s, n.Load())
	}
	p.Release(b, false) // within the size: to the queued client
	if c := <-got; c != b {
		t.Fatalf("the queued client got %v, want the connection released", c)
	}
	if s := p.Stats(); s.Total != 1 || n.Load() != 2 {
		t.Fatalf("after shrinking: %+v, dials %d", s, n.Load())
	}
}
