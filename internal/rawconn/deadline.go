package rawconn

import (
	"errors"
	"os"
	"time"
)

// probeAfter bounds how long a read that skipped its probe may wait
// before probing after all.
//
// Skipping the probe is safe for data: each arrival makes the poller
// ready again. It is not safe for the end of the stream: when data and
// the peer's FIN arrive before one read, the read returns the data, and
// the FIN will never make the poller ready again. A safety deadline
// catches that case. It is armed lazily (moved on only when less than
// half of it is left), so a busy connection touches its timer a few
// times a second rather than on every wait.
const probeAfter = 50 * time.Millisecond

// closeDeadline is the past read deadline Close sets to wake a reader.
var closeDeadline = time.Unix(1, 0)

// SetReadDeadline sets the caller's read deadline; the safety deadline,
// when armed and earlier, stays in force underneath it.
func (c *Conn) SetReadDeadline(t time.Time) error {
	c.dmu.Lock()
	defer c.dmu.Unlock()
	if c.closing.Load() {
		// Close's past deadline must stay, or a Read it is waking could
		// go back to waiting and Close with it.
		return nil
	}
	if t.Equal(c.userRD) {
		// The session clears its deadline at every ReadyForQuery outside
		// a transaction; the poller's timer need not hear of it again.
		return nil
	}
	c.userRD = t
	return c.applyLocked()
}

// wakeForClose sets the past deadline that wakes a waiting Read; after
// closing is set, nothing moves it.
func (c *Conn) wakeForClose() {
	c.dmu.Lock()
	defer c.dmu.Unlock()
	c.userRD = closeDeadline
	_ = c.applyLocked()
}

// SetDeadline sets both deadlines, as net.Conn's does.
func (c *Conn) SetDeadline(t time.Time) error {
	if err := c.SetReadDeadline(t); err != nil {
		return err
	}
	return c.SetWriteDeadline(t)
}

// SetWriteDeadline sets the write deadline, as net.Conn's does.
func (c *Conn) SetWriteDeadline(t time.Time) error {
	if c.owned {
		return c.setPollDeadline(t, 'w')
	}
	return c.Conn.SetWriteDeadline(t)
}

func (c *Conn) applyLocked() error {
	eff := c.userRD
	if armed := c.armed.Load(); armed != 0 {
		// born's monotonic reading carries over, so that the poller's
		// time.Until reads one clock, not two.
		if at := c.born.Add(time.Duration(armed)); eff.IsZero() || at.Before(eff) {
			eff = at
		}
	}
	if c.owned {
		return c.setPollDeadline(eff, 'r')
	}
	return c.Conn.SetReadDeadline(eff)
}

// armSafety makes sure the safety deadline is at least probeAfter/2
// ahead. Called by Read before a wait without a probe.
func (c *Conn) armSafety() {
	now := int64(time.Since(c.born))
	if c.armed.Load()-now >= int64(probeAfter/2) {
		return
	}
	c.dmu.Lock()
	c.armed.Store(now + int64(probeAfter))
	_ = c.applyLocked()
	c.dmu.Unlock()
}

// disarmSafety drops the safety deadline; the caller's own stays.
func (c *Conn) disarmSafety() {
	if c.armed.Load() == 0 {
		return
	}
	c.dmu.Lock()
	c.armed.Store(0)
	_ = c.applyLocked()
	c.dmu.Unlock()
}

// safetyExpired reports whether err is the safety deadline's timeout
// rather than the caller's, disarming it if so: the next wait probes
// first, as a plain read does.
func (c *Conn) safetyExpired(err error) bool {
	if !errors.Is(err, os.ErrDeadlineExceeded) || c.closing.Load() {
		return false
	}
	c.dmu.Lock()
	defer c.dmu.Unlock()
	if c.armed.Load() == 0 || (!c.userRD.IsZero() && !time.Now().Before(c.userRD)) {
		return false
	}
	c.armed.Store(0)
	_ = c.applyLocked()
	return true
}
