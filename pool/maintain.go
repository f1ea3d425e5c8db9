package pool

import (
	"context"
	"crypto/tls"
	"fmt"
	"net"
	"strings"
	"time"
)

// Maintain closes connections past their idle timeout or lifetime and
// opens connections up to MinSize. The Manager calls it periodically.
func (p *Pool) Maintain(ctx context.Context, now time.Time) {
	p.mu.Lock()
	var expired []*Conn
	keep := p.idle[:0]
	for i, c := range p.idle {
		// p.idle[:i] are the least recently used: idle timeout trims them
		// first and stops at MinSize. A pool made smaller than it holds
		// closes idle connections over its size at once, as PgBouncer
		// does; the lent ones go when they come back (Release).
		left := p.total - len(expired)
		tooIdle := now.Sub(c.idleSince) > p.opts.IdleTimeout && left > p.opts.MinSize
		tooOld := now.Sub(c.created) > p.opts.MaxLifetime
		tooMany := left > p.opts.MaxSize+p.opts.ReserveSize
		if tooIdle || tooOld || tooMany {
			expired = append(expired, c)
			continue
		}
		keep = append(keep, p.idle[i])
	}
	for i := len(keep); i < len(p.idle); i++ {
		p.idle[i] = nil
	}
	p.idle = keep
	missing := p.opts.MinSize - p.total + len(expired)
	if p.held.Load() > 0 {
		missing = 0
	}
	p.mu.Unlock()

	for _, c := range expired {
		p.discard(c)
	}
	for i := 0; i < missing; i++ {
		p.mu.Lock()
		if p.closed || p.total >= p.opts.MinSize || p.takeLimits() != nil {
			p.mu.Unlock()
			return
		}
		p.total++
		p.mu.Unlock()
		c, err := p.open(ctx, 0)
		if err != nil {
			return
		}
		p.Release(c, false)
	}
}

// Close closes idle connections and refuses further Acquires. Connections
// on loan are closed when they come back.
func (p *Pool) Close() {
	p.mu.Lock()
	p.closed = true
	idle := p.idle
	p.idle = nil
	waiters := p.waiters
	p.waiters = nil
	p.mu.Unlock()
	for _, w := range waiters {
		w.ch <- grant{closed: true}
	}
	for _, c := range idle {
		p.discard(c)
	}
}

// SetOptions applies new limits, as on a config reload. A larger pool
// lets the clients already queued dial now; a smaller one closes what it
// no longer holds as the connections come back (see Release).
func (p *Pool) SetOptions(o Options) {
	p.mu.Lock()
	p.opts = o
	p.joinLimits()
	for p.total < p.opts.MaxSize {
		queued := len(p.waiters)
		p.passSlot()
		if len(p.waiters) == queued { // nobody queued, or starved under a cap
			break
		}
	}
	p.mu.Unlock()
}

// SetTarget changes where new connections go (say, a new password). When
// it names another server, database, user, password or sslmode, the
// connections opened for the old one are closed: the idle ones now, the
// lent ones when they come back, as PgBouncer does on a reload. Without
// that, a reload that moves a backend would leave clients on the old
// server until max_lifetime.
func (p *Pool) SetTarget(t Target) {
	p.mu.Lock()
	old := p.target
	p.target = t
	old.ConnectTimeout, t.ConnectTimeout = 0, 0
	if old == t {
		p.mu.Unlock()
		return
	}
	// The new server reports its own settings (server_version, say) to
	// the clients that log in from now on.
	if p.params != nil {
		p.params = nil
		p.paramsReady = make(chan struct{})
	}
	p.retireLocked()
}

// Decommission is for a pool whose backend left the configuration: it
// keeps no minimum any more, and closes its connections, the idle ones at
// once and the lent ones when they come back. A client may still lease
// from it, as from any pool.
func (p *Pool) Decommission() {
	p.mu.Lock()
	p.opts.MinSize = 0
	p.retireLocked()
}

// Retire closes every connection open now: the idle ones at once, the
// lent ones when they come back (PgBouncer's RECONNECT, and PAUSE once
// nothing is lent).
func (p *Pool) Retire() {
	p.mu.Lock()
	p.retireLocked()
}

// retireLocked starts a new generation; p.mu is held and released.
func (p *Pool) retireLocked() {
	p.gen++
	idle := p.idle
	p.idle = nil
	p.mu.Unlock()
	for _, c := range idle {
		p.discard(c)
	}
}

// Hold stops upkeep from opening connections towards MinSize until a
// matching Unhold: a PAUSE must leave a restarting server alone.
func (p *Pool) Hold() { p.held.Add(1) }

// Unhold ends one Hold.
func (p *Pool) Unhold() { p.held.Add(-1) }

// countGen counts n more (or fewer) open connections of generation gen;
// p.mu is held.
func (p *Pool) countGen(gen uint64, n int) {
	if p.byGen == nil {
		p.byGen = map[uint64]int{}
	}
	if p.byGen[gen] += n; p.byGen[gen] <= 0 {
		delete(p.byGen, gen)
	}
}

// Retiring is how many connections a Retire or a new target left open,
// lent to clients: each closes when it comes back (PgBouncer's
// WAIT_CLOSE waits for them).
func (p *Pool) Retiring() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	n := 0
	for gen, count := range p.byGen {
		if gen != p.gen {
			n += count
		}
	}
	return n
}

// KnownParams returns the server's startup ParameterStatus set once a
// connection has reported it, and nil before that.
func (p *Pool) KnownParams() map[string]string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.params
}

// Params returns the server's startup ParameterStatus set. Until a first
// connection has reported it, one caller at a time opens a connection to
// learn it and the others wait for that.
func (p *Pool) Params(ctx context.Context) (map[string]string, error) {
	for {
		p.mu.Lock()
		params, fetching := p.params, p.fetchingParams
		if params == nil && !fetching {
			p.fetchingParams = true
		}
		p.mu.Unlock()
		if params != nil {
			return params, nil
		}
		if fetching {
			select {
			case <-p.paramsReady:
				continue
			case <-time.After(100 * time.Millisecond):
				continue // the fetcher may have failed; try ourselves
			case <-ctx.Done():
				return nil, ctx.Err()
			}
		}
		c, err := p.Acquire(ctx)
		p.mu.Lock()
		p.fetchingParams = false
		p.mu.Unlock()
		if err != nil {
			return nil, err
		}
		params = c.Params
		p.Release(c, false)
		return params, nil
	}
}

// Stats returns a snapshot of the pool's counters.
func (p *Pool) Stats() Stats {
	p.mu.Lock()
	defer p.mu.Unlock()
	s := p.stats
	s.Total, s.Idle, s.Waiting = p.total, len(p.idle), len(p.waiters)
	s.Opening, s.Testing, s.Cancelling = p.opening, p.testing, p.cancelling
	now := time.Now()
	for _, c := range p.idle {
		if c.dueCheck(now, p.opts.HealthCheckAfter) {
			s.IdleToCheck++
		}
	}
	if len(p.waiters) > 0 {
		// The queue is FIFO: its head has waited longest.
		s.MaxWait = time.Since(p.waiters[0].since)
	}
	s.DownSince = p.downSince
	if p.lastRefusal != nil {
		s.LastRefusal = p.lastRefusal.Error()
	}
	return s
}

// Target returns where the pool's connections go.
func (p *Pool) Target() Target {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.target
}

// Probe opens one connection to the server, outside the pool's count, and
// closes it at once: it answers whether the server takes connections now
// (a server shutting down refuses them with 57P03, a stopped one is not
// listening). It is paced with the pool's own dials: many clients whose
// backends were terminated at once probe a live server.
func (p *Pool) Probe(ctx context.Context) error {
	select {
	case p.dialing <- struct{}{}:
		defer func() { <-p.dialing }()
	case <-ctx.Done():
		return ctx.Err()
	}
	p.mu.Lock()
	t := p.target
	p.mu.Unlock()
	c, err := p.dial(ctx, t)
	if err != nil {
		return err
	}
	return c.Conn.Close()
}

// ConnInfo describes one server connection, for the admin console.
type ConnInfo struct {
	PID       uint32
	Addr      string
	Created   time.Time
	IdleSince time.Time // zero while lent
	// Local is the proxy's end of the connection, TLS its protocol and
	// cipher (empty without TLS), and Ptr names the connection, as
	// PgBouncer's ptr does, so that a client's link can point to it.
	Local, TLS, Ptr string
	// Retired connections close when they next come back (RECONNECT, a
	// new target); DueCheck idle ones are checked before they are lent.
	Retired, DueCheck bool
}

// Info describes c; p.mu is held.
func (p *Pool) info(c *Conn, now time.Time) ConnInfo {
	i := c.Info()
	i.Retired = c.gen != p.gen
	i.IdleSince = c.idleSince
	i.DueCheck = c.dueCheck(now, p.opts.HealthCheckAfter)
	return i
}

// Info describes c as it stands while lent.
func (c *Conn) Info() ConnInfo {
	return ConnInfo{PID: c.PID, Addr: c.Addr, Created: c.created, Local: c.LocalAddr().String(),
		TLS: TLSDescription(c.Conn), Ptr: PtrOf(c)}
}

// Retired reports whether c closes when it comes back.
func (p *Pool) Retired(c *Conn) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	return c.gen != p.gen
}

// PtrOf names an object by its address, in hex as PgBouncer's SHOW
// CLIENTS and SHOW SERVERS do.
func PtrOf(v any) string { return strings.TrimPrefix(fmt.Sprintf("%p", v), "0x") }

// TLSDescription says which TLS protocol and cipher a connection uses, or
// "" for a plain one.
func TLSDescription(nc net.Conn) string {
	tc, ok := nc.(*tls.Conn)
	if !ok {
		return ""
	}
	st := tc.ConnectionState()
	return tls.VersionName(st.Version) + "/" + tls.CipherSuiteName(st.CipherSuite)
}

// Created is when c was opened.
func (c *Conn) Created() time.Time { return c.created }

// IdleConns describes the connections idle in the pool now.
func (p *Pool) IdleConns() []ConnInfo {
	p.mu.Lock()
	defer p.mu.Unlock()
	out := make([]ConnInfo, 0, len(p.idle))
	now := time.Now()
	for _, c := range p.idle {
		out = append(out, p.info(c, now))
	}
	return out
}
