package pool

import (
	"context"
	"errors"
	"io"
	"slices"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/ai-ninja/pgninja/internal/pgerr"
	"github.com/jackc/pgx/v5/pgconn"
)

// Options are a pool's limits. They may change on reload.
type Options struct {
	MinSize     int
	MaxSize     int
	ReserveSize int
	// ReserveTimeout is how long a waiter waits before a reserve
	// connection may be opened for it.
	ReserveTimeout time.Duration
	// AcquireTimeout is how long a waiter waits in all.
	AcquireTimeout time.Duration
	// RestartWait is how long acquires keep dialling a server that
	// refuses connections as a restarting one does, counted from its
	// first refusal. After that they fail at once, with its refusal,
	// until it accepts a connection again.
	RestartWait      time.Duration
	IdleTimeout      time.Duration
	MaxLifetime      time.Duration
	HealthCheckAfter time.Duration
	// ResetQuery runs on Release when the caller asks for a reset.
	ResetQuery string
	// Limits cap this pool's connections together with other pools'
	// (see Limit). They must be the same objects at every SetOptions.
	Limits []*Limit
}

// DialFunc opens one connection to a target.
type DialFunc func(ctx context.Context, t Target) (*Conn, error)

// maxConcurrentDials paces server logins. A burst of clients must not
// turn into a burst of hundreds of simultaneous forks and SCRAM exchanges
// on the server, which then all time out together; PgBouncer paces its
// logins for the same reason.
const maxConcurrentDials = 4

// Pool lends connections to one (backend, database, user).
type Pool struct {
	dial    DialFunc
	dialing chan struct{}

	mu     sync.Mutex
	target Target
	// gen counts the target's changes; a connection opened for an
	// earlier one is closed when it comes back (see SetTarget).
	gen uint64
	// byGen counts the open connections of each generation, so that
	// WAIT_CLOSE can tell when the retired ones are gone.
	byGen   map[uint64]int
	opts    Options
	idle    []*Conn // most recently used last
	total   int     // open plus being dialled
	waiters []*waiter
	// waitTimer times the queue out: one timer for the pool, armed for
	// the earliest deadline of a waiter (at waitTimerAt, zero when
	// disarmed), rather than one armed and stopped by each wait.
	waitTimer   *time.Timer
	waitTimerAt time.Time
	closed      bool
	params      map[string]string
	// paramsReady is closed when the first connection has reported the
	// server's parameters; logins wait on it instead of each dialling.
	paramsReady    chan struct{}
	fetchingParams bool
	stats          Stats
	// opening, testing and cancelling: see Stats.
	opening, testing, cancelling int
	// suspectUntil: a connection broke lately, so every idle one is
	// peeked at before it is lent, however briefly it sat (see vet).
	suspectUntil time.Time
	// The server has refused connections as a restarting one does since
	// downSince (zero while it takes them); lastRefusal came at refusedAt.
	downSince, refusedAt time.Time
	lastRefusal          error
	// held counts the PAUSEs over the pool: while one lasts, upkeep opens
	// no connections towards MinSize (the server may be restarting).
	held atomic.Int32
}

// Stats are counters and gauges for the admin surface and metrics.
type Stats struct {
	Total, Idle, Waiting int
	// Opening connections are being dialled; Testing ones are out of the
	// idle list for a health check or back from a client for a reset
	// (PgBouncer's sv_login and sv_tested). IdleToCheck of the Idle ones
	// have sat longer than HealthCheckAfter, so lending one runs a check
	// first (sv_used). Cancelling counts the cancel requests being
	// forwarded to the servers of this pool's connections.
	Opening, Testing, IdleToCheck, Cancelling int
	// MaxWait is how long the longest-queued client has waited.
	MaxWait                        time.Duration `json:",omitzero"`
	Acquires, Waits, Timeouts      uint64
	Dials, DialErrors, Closed      uint64
	HealthCheckFails, ResetFailure uint64
	// DownSince is when the server began refusing connections as a
	// restarting one does, and LastRefusal its last refusal; both are
	// empty while it takes connections.
	DownSince   time.Time `json:",omitzero"`
	LastRefusal string    `json:",omitempty"`
}

// waiter is a client queued for a connection. A grant carries either a
// connection or permission to dial one (a slot freed by a closed
// connection), so a waiter never waits behind a slot nobody uses.
type waiter struct {
	ch       chan grant
	since    time.Time
	deadline time.Time // since plus the acquire timeout
}

// waiters are reused: in a busy transaction-mode pool most acquires wait,
// and a channel for each showed in profiles. A waiter goes back only once
// its channel is empty and it is off the queue.
var waiterPool = sync.Pool{New: func() any { return &waiter{ch: make(chan grant, 1)} }}

type grant struct {
	conn     *Conn
	closed   bool
	timedOut bool  // the acquire timeout ran out (expireWaiters)
	aborted  error // an Abort ended the wait (abortWaiter)
}

// New makes an empty pool; connections open on demand and to MinSize.
func New(t Target, opts Options, dial DialFunc) *Pool {
	if dial == nil {
		dial = Dial
	}
	p := &Pool{target: t, opts: opts, dial: dial,
		dialing: make(chan struct{}, maxConcurrentDials), paramsReady: make(chan struct{})}
	p.joinLimits()
	return p
}

// ErrClosed is returned by Acquire on a closed pool.
var ErrClosed = pgerr.Fatal(pgerr.AdminShutdown, "pgninja: pool is closed")

// How an acquire may wait.
const (
	queue      = 1 << iota // in FIFO order while the pool is full
	rideOut                // for a restarting server, up to RestartWait
	waitAnyway = queue | rideOut
)

// Acquire lends a connection, waiting up to the acquire timeout in FIFO
// order when the pool is full, and up to RestartWait for a server that
// is restarting.
func (p *Pool) Acquire(ctx context.Context) (*Conn, error) { return p.acquire(ctx, waitAnyway) }

// AcquireIfUp is Acquire for a caller with another server to go to: a
// server refusing connections fails it at once rather than being waited
// for.
func (p *Pool) AcquireIfUp(ctx context.Context) (*Conn, error) { return p.acquire(ctx, queue) }

// TryAcquire lends a connection when one is idle or may be opened, and
// returns nil, without waiting or passing anyone queued, when the pool is
// full.
func (p *Pool) TryAcquire(ctx context.Context) (*Conn, error) { return p.acquire(ctx, 0) }

func (p *Pool) acquire(ctx context.Context, how int) (*Conn, error) {
	p.mu.Lock()
	p.stats.Acquires++
	start := time.Now()
	for {
		if p.closed {
			p.mu.Unlock()
			return nil, ErrClosed
		}
		if n := len(p.idle); n > 0 {
			c := p.idle[n-1]
			p.idle = p.idle[:n-1]
			opts := p.opts
			suspect := p.suspectUntil.After(start)
			p.mu.Unlock()
			if c, ok := p.vet(ctx, c, opts, suspect); ok {
				c.lend()
				return c, nil
			}
			p.mu.Lock()
			continue
		}
		if p.total < p.opts.MaxSize {
			if blocked := p.takeLimits(); blocked != nil {
				// Another pool's idle connection under the limit makes
				// room; without one, wait as for a full pool.
				p.mu.Unlock()
				made := p.makeRoom(blocked)
				p.mu.Lock()
				// TryAcquire waits for nothing, so starves for nothing.
				if made || (how&queue != 0 && !blocked.starve(p)) {
					continue
				}
			} else {
				p.total++
				p.mu.Unlock()
				c, err := p.open(ctx, how)
				if err != nil && p.dialAgain(ctx, start, err, how) {
					p.mu.Lock()
					continue
				}
				return c, err
			}
		}
		if how&queue == 0 {
			p.stats.Acquires-- // nothing was lent, and nobody waited
			p.mu.Unlock()
			return nil, nil
		}
		c, dial, err := p.wait(ctx, start)
		if err != nil {
			return nil, err
		}
		if dial {
			c, err := p.open(ctx, how)
			if err != nil && p.dialAgain(ctx, start, err, how) {
				p.mu.Lock()
				continue
			}
			return c, err
		}
		if c != nil {
			c.lend()
			return c, nil
		}
		p.mu.Lock()
	}
}

// AcquireIdle lends c itself when it sits idle in this pool, and nil
// otherwise, without waiting: for a client whose session state is on c.
// An idle connection means nobody is queued, so nobody is passed.
func (p *Pool) AcquireIdle(ctx context.Context, c *Conn) *Conn {
	p.mu.Lock()
	i := slices.Index(p.idle, c)
	if i < 0 || p.closed {
		p.mu.Unlock()
		return nil
	}
	p.idle = slices.Delete(p.idle, i, i+1)
	p.stats.Acquires++
	opts := p.opts
	suspect := p.suspectUntil.After(time.Now())
	p.mu.Unlock()
	if _, ok := p.vet(ctx, c, opts, suspect); !ok {
		return nil
	}
	c.lend()
	return c
}

// quietCheckAfter is how long a connection must have sat idle before it
// is peeked at when lent. A connection that went back a moment ago, the
// usual case in a busy transaction-mode pool, skips the system call: the
// server ending it within that moment is rare, unless the pool has just
// seen a connection break (suspectFor), when the server going down takes
// the idle ones with it.
const (
	quietCheckAfter = 10 * time.Millisecond
	suspectFor      = time.Second
)

// vet checks an idle connection before lending it: too old, or idle long
// enough (or suspect) that the server may have gone away, means close or
// probe it.
func (p *Pool) vet(ctx context.Context, c *Conn, opts Options, suspect bool) (*Conn, bool) {
	now := time.Now()
	if now.Sub(c.created) > opts.MaxLifetime {
		p.discard(c)
		return nil, false
	}
	if (suspect || now.Sub(c.idleSince) >= quietCheckAfter) && !c.quiet() {
		p.discardDead(c, false)
		return nil, false
	}
	if c.dueCheck(now, opts.HealthCheckAfter) {
		cctx, cancel := context.WithTimeout(ctx, 2*time.Second)
		p.noteTesting(1)
		err := c.Exec(cctx, "")
		p.noteTesting(-1)
		cancel()
		if err != nil {
			p.discardDead(c, true)
			return nil, false
		}
	}
	return c, true
}

// noteTesting counts a connection into or out of a check or reset.
func (p *Pool) noteTesting(delta int) {
	p.mu.Lock()
	p.testing += delta
	p.mu.Unlock()
}

// NoteCancel counts a cancel request into (1) or out of (-1) its way to
// the server of one of the pool's connections.
func (p *Pool) NoteCancel(delta int) {
	p.mu.Lock()
	p.cancelling += delta
	p.mu.Unlock()
}

// discardDead closes an idle connection found dead. The server that
// ended it may have ended its neighbours too, so they are suspect.
func (p *Pool) discardDead(c *Conn, checked bool) {
	p.mu.Lock()
	if checked {
		p.stats.HealthCheckFails++
	}
	p.suspectUntil = time.Now().Add(suspectFor)
	p.mu.Unlock()
	p.discard(c)
}

// wait queues the caller. It returns a connection handed over by Release,
// or dial=true when the caller now owns a free slot, or a timeout error.
// p.mu is held on entry and released on return.
func (p *Pool) wait(ctx context.Context, start time.Time) (c *Conn, dial bool, err error) {
	w := waiterPool.Get().(*waiter)
	defer waiterPool.Put(w)
	w.since = start
	w.deadline = start.Add(p.opts.AcquireTimeout)
	p.waiters = append(p.waiters, w)
	p.stats.Waits++
	p.armWaitTimer(w.deadline)
	opts := p.opts
	p.mu.Unlock()

	if opts.ReserveSize <= 0 {
		if a := abortOf(ctx); a != nil {
			return p.waitOnGrant(w, a, opts)
		}
		if ctx.Done() == nil {
			return p.waitOnGrant(w, nil, opts)
		}
	}
	var reserve <-chan time.Time
	if opts.ReserveSize > 0 {
		rt := time.NewTimer(opts.ReserveTimeout)
		defer rt.Stop()
		reserve = rt.C
	}
	for {
		select {
		case g := <-w.ch:
			return p.received(g, opts)
		case <-reserve:
			reserve = nil
			p.mu.Lock()
			if p.total < p.opts.MaxSize+p.opts.ReserveSize && p.takeLimits() == nil {
				if p.dequeue(w) {
					p.total++
					p.mu.Unlock()
					return nil, true, nil
				}
				p.releaseLimits()
			}
			p.mu.Unlock()
		case <-ctx.Done():
			return p.giveUp(w, ctx.Err(), opts)
		}
	}
}

// giveUp leaves the queue when the caller's context ends; if a grant (or
// the timeout) raced in, it is honoured instead.
func (p *Pool) giveUp(w *waiter, err error, opts Options) (*Conn, bool, error) {
	p.mu.Lock()
	if p.dequeue(w) {
		p.mu.Unlock()
		return nil, false, err
	}
	p.mu.Unlock()
	return p.received(<-w.ch, opts)
}

// received turns what a waiter was sent into Acquire's answer.
func (p *Pool) received(g grant, opts Options) (*Conn, bool, error) {
	if g.timedOut {
		return nil, false, p.timedOut(opts)
	}
	if g.aborted != nil {
		return nil, false, g.aborted
	}
	return g.take()
}

// armWaitTimer makes the queue's timer fire by deadline; p.mu is held.
// A timer already due earlier stays: when it fires it arms itself for
// the next deadline.
func (p *Pool) armWaitTimer(deadline time.Time) {
	if !p.waitTimerAt.IsZero() && !deadline.Before(p.waitTimerAt) {
		return
	}
	p.waitTimerAt = deadline
	if p.waitTimer == nil {
		p.waitTimer = time.AfterFunc(time.Until(deadline), p.expireWaiters)
		return
	}
	p.waitTimer.Reset(time.Until(deadline))
}

// expireWaiters answers the waiters whose acquire timeout has run out,
// and arms the timer for the earliest deadline left. Deadlines are kept
// per waiter because a reload may change the timeout while some wait.
func (p *Pool) expireWaiters() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.waitTimerAt = time.Time{}
	now := time.Now()
	var next time.Time
	keep := p.waiters[:0]
	for _, w := range p.waiters {
		if !w.deadline.After(now) {
			p.stats.Timeouts++
			w.ch <- grant{timedOut: true} // empty: it was still queued
			continue
		}
		if next.IsZero() || w.deadline.Before(next) {
			next = w.deadline
		}
		keep = append(keep, w)
	}
	clear(p.waiters[len(keep):])
	p.waiters = keep
	if !next.IsZero() {
		p.armWaitTimer(next)
	}
}

// timedOut is the error of a waiter whose acquire timeout ran out: the
// server's refusal while it is down (the pool was full of connections it
// took with it), else 53300.
func (p *Pool) timedOut(opts Options) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if !p.downSince.IsZero() {
		return p.refused(time.Now())
	}
	if p.total < opts.MaxSize {
		// Room in the pool, none under a cap shared with other pools.
		for _, l := range opts.Limits {
			if l.reached() {
				return pgerr.New(pgerr.TooManyConnections,
					"pgninja: no server connection available for %s@%s within %v (%s reached: %d connections)",
					p.target.User, p.target.Database, opts.AcquireTimeout, l.Name, l.Max()).
					WithHint("Raise the cap or the acquire timeout, or shorten transactions.")
			}
		}
	}
	return pgerr.New(pgerr.TooManyConnections,
		"pgninja: no server connection available for %s@%s within %v (pool full: %d in use)",
		p.target.User, p.target.Database, opts.AcquireTimeout, opts.MaxSize).
		WithHint("Raise pool.max_size or pool.acquire_timeout, or shorten transactions.")
}

// take turns a grant into wait's results.
func (g grant) take() (*Conn, bool, error) {
	if g.closed {
		return nil, false, ErrClosed
	}
	return g.conn, g.conn == nil, nil
}

func (p *Pool) dequeue(w *waiter) bool {
	for i, x := range p.waiters {
		if x == w {
			p.waiters = append(p.waiters[:i], p.waiters[i+1:]...)
			return true
		}
	}
	return false
}

// redialPause is how long an acquire waits before dialling a server
// again that is restarting.
const redialPause = 200 * time.Millisecond

// dialAgain reports, after a pause, whether an acquire whose dial failed
// should try again: the server refused as one does while it restarts
// (57P03 shutting down or starting up, or nothing listening yet), and the
// caller may still wait that long. A restart then costs clients a wait,
// as a full pool does, instead of an error; a server that stays down
// costs them RestartWait at most, counted from its first refusal.
func (p *Pool) dialAgain(ctx context.Context, start time.Time, err error, how int) bool {
	if how&rideOut == 0 || !Restarting(err) {
		return false
	}
	p.mu.Lock()
	now := time.Now()
	left := min(p.opts.AcquireTimeout-now.Sub(start), p.restartLeft(now))
	p.mu.Unlock()
	if left <= redialPause {
		return false
	}
	t := time.NewTimer(redialPause)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
		return false
	}
}

// Restarting reports whether a dial failed as it does against a server
// that is shutting down, starting up, or not yet listening: 57P03, a
// backend ended by the shutdown mid-login (57P01, 57P02, or the socket
// closed on it), or nothing listening.
func Restarting(err error) bool {
	var pe *pgconn.PgError
	if errors.As(err, &pe) {
		switch pe.Code {
		case pgerr.CannotConnectNow, pgerr.AdminShutdown, "57P02": // 57P02: crash shutdown
			return true
		}
		return false
	}
	return errors.Is(err, syscall.ECONNREFUSED) || errors.Is(err, syscall.ECONNRESET) ||
		errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF)
}

// refusing returns the server's last refusal when an acquire should take
// it rather than dial: the server refused a moment ago, and this caller
// does not wait for it (any longer). Otherwise each acquire on a down
// server would dial, a herd of logins for a server starting up.
// p.mu is held.
func (p *Pool) refusing(now time.Time, how int) error {
	if p.downSince.IsZero() || now.Sub(p.refusedAt) >= redialPause {
		return nil
	}
	if how&rideOut != 0 && p.restartLeft(now) > redialPause {
		return nil
	}
	return p.refused(now)
}

// restartLeft is how much longer acquires wait for the server to come
// back. p.mu is held.
func (p *Pool) restartLeft(now time.Time) time.Duration {
	return p.opts.RestartWait - now.Sub(p.downSince)
}

// refused is the error for an acquire given up on a down server: its
// own refusal, said to be lasting. p.mu is held.
func (p *Pool) refused(now time.Time) error {
	code := pgerr.SQLState(p.lastRefusal)
	if code != pgerr.CannotConnectNow {
		code = pgerr.ConnectionFailure
	}
	r := pgerr.Response(p.lastRefusal)
	detail := r.Message
	if r.Detail != "" {
		detail += ": " + r.Detail
	}
	return pgerr.Wrap(p.lastRefusal, pgerr.SeverityError, code,
		"pgninja: server %s has refused connections for %v", p.target.Addr(),
		now.Sub(p.downSince).Round(100*time.Millisecond)).WithDetail(detail)
}

// noteDial keeps track of whether the server is down: refusing
// connections as a restarting one does. p.mu is held.
func (p *Pool) noteDial(err error, now time.Time) {
	if err == nil || !Restarting(err) {
		p.downSince, p.lastRefusal = time.Time{}, nil
		return
	}
	if p.downSince.IsZero() {
		p.downSince = now
	}
	p.refusedAt, p.lastRefusal = now, err
}

// open dials into a slot the caller already counted in p.total.
func (p *Pool) open(ctx context.Context, how int) (*Conn, error) {
	p.mu.Lock()
	err := p.refusing(time.Now(), how)
	if err != nil {
		p.total--
		p.releaseLimits()
		p.passSlot()
		p.mu.Unlock()
		return nil, err
	}
	p.opening++
	p.mu.Unlock()
	var c *Conn
	select {
	case p.dialing <- struct{}{}:
		p.mu.Lock()
		t, gen := p.target, p.gen
		p.stats.Dials++
		p.mu.Unlock()
		c, err = p.dial(ctx, t)
		if c != nil {
			c.gen = gen
		}
		<-p.dialing
	case <-ctx.Done():
		err = ctx.Err()
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	p.opening--
	if ctx.Err() == nil {
		p.noteDial(err, time.Now())
	}
	if err != nil {
		p.stats.DialErrors++
		p.total--
		p.releaseLimits()
		p.passSlot()
		return nil, err
	}
	c.pool = p
	c.lend()
	p.countGen(c.gen, 1)
	if p.params == nil && c.gen == p.gen {
		p.params = c.Params
		close(p.paramsReady)
	}
	return c, nil
}

// passSlot gives a freed slot to the first waiter, who will dial; under
// a limit that is reached, the pool starves instead until a connection
// closes under it. p.mu must be held.
func (p *Pool) passSlot() {
	if len(p.waiters) == 0 || p.closed {
		return
	}
	for {
		blocked := p.takeLimits()
		if blocked == nil {
			break
		}
		if blocked.starve(p) {
			return
		}
	}
	w := p.waiters[0]
	p.waiters = p.waiters[1:]
	p.total++
	w.ch <- grant{}
}

// discard closes a connection that is out of the pool's hands.
func (p *Pool) discard(c *Conn) {
	_ = c.Close()
	p.mu.Lock()
	p.total--
	p.releaseLimits()
	p.countGen(c.gen, -1)
	p.stats.Closed++
	if p.total < p.opts.MaxSize {
		// A reserve connection, or one over a size a reload lowered,
		// leaves no room for a queued client to dial.
		p.passSlot()
	}
	p.mu.Unlock()
}

// overSize: the pool holds more connections than its size and reserve
// allow, after a reload made it smaller; p.mu is held.
func (p *Pool) overSize() bool {
	return p.total > p.opts.MaxSize+p.opts.ReserveSize
}

// Release returns c. A connection inside a transaction is rolled back
// first; with reset, the reset query runs; a broken or failing connection
// is closed instead, so no client ever inherits another's state.
func (p *Pool) Release(c *Conn, reset bool) {
	if !c.leased.CompareAndSwap(true, false) {
		// Handing a connection back twice would give it to two clients.
		panic("pool: connection released twice")
	}
	p.mu.Lock()
	if c.broken {
		p.suspectUntil = time.Now().Add(suspectFor)
	}
	if c.broken || p.closed || c.gen != p.gen || time.Since(c.created) > p.opts.MaxLifetime {
		p.mu.Unlock()
		p.discard(c)
		return
	}
	if c.TxStatus != 'I' || (reset && p.opts.ResetQuery != "") {
		opts := p.opts
		p.mu.Unlock()
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		p.noteTesting(1)
		err := p.clean(ctx, c, reset, opts)
		p.noteTesting(-1)
		cancel()
		if err != nil {
			p.mu.Lock()
			p.stats.ResetFailure++
			p.mu.Unlock()
			p.discard(c)
			return
		}
		p.mu.Lock()
	}
	// A clean connection is handed on in the same critical section as
	// the checks above: in a busy transaction-mode pool nearly every
	// release has a waiter.
	if c.gen != p.gen || p.overSize() {
		// The target changed while it was being cleaned, or the pool
		// was made smaller than it holds.
		p.mu.Unlock()
		p.discard(c)
		return
	}
	if len(p.waiters) > 0 {
		w := p.waiters[0]
		p.waiters = p.waiters[1:]
		w.ch <- grant{conn: c}
		p.mu.Unlock()
		return
	}
	if len(p.opts.Limits) > 0 && p.limitStarved() {
		// Another pool under a shared limit waits for room.
		p.mu.Unlock()
		p.discard(c)
		return
	}
	c.idleSince = time.Now()
	p.idle = append(p.idle, c)
	p.mu.Unlock()
}

func (p *Pool) clean(ctx context.Context, c *Conn, reset bool, opts Options) error {
	if c.TxStatus != 'I' {
		if err := c.Exec(ctx, "ROLLBACK"); err != nil {
			return err
		}
		if c.TxStatus != 'I' {
			return errors.New("still in a transaction after ROLLBACK")
		}
	}
	if reset && opts.ResetQuery != "" {
		if err := c.Exec(ctx, opts.ResetQuery); err != nil {
			return err
		}
		if r, ok := c.State.(interface{ Reset() }); ok {
			r.Reset()
		} else {
			c.State = nil
		}
	}
	return nil
}
