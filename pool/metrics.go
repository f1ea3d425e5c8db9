package pool

import (
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// Collector reports every pool's Stats as metrics labelled by backend,
// database and user: what PgBouncer's SHOW POOLS and SHOW STATS tell.
func (m *Manager) Collector() prometheus.Collector { return poolCollector{m} }

type poolCollector struct{ m *Manager }

var poolLabels = []string{"backend", "database", "user"}

func poolDesc(name, help string, extra ...string) *prometheus.Desc {
	return prometheus.NewDesc(name, help, append(append([]string{}, poolLabels...), extra...), nil)
}

var (
	descConns     = poolDesc("pgninja_pool_server_connections", "Server connections open or being opened, by state: active (lent), idle, opening, or testing (checked or reset).", "state")
	descWaiting   = poolDesc("pgninja_pool_clients_waiting", "Clients queued for a server connection.")
	descDown      = poolDesc("pgninja_pool_server_down_seconds", "How long the server has refused connections as a restarting one does; 0 while it takes them.")
	descAcquires  = poolDesc("pgninja_pool_acquires_total", "Server connections asked for.")
	descWaits     = poolDesc("pgninja_pool_waits_total", "Acquires that queued because the pool was full.")
	descTimeouts  = poolDesc("pgninja_pool_acquire_timeouts_total", "Queued acquires whose acquire timeout ran out.")
	descDials     = poolDesc("pgninja_pool_dials_total", "Server logins attempted.")
	descDialErrs  = poolDesc("pgninja_pool_dial_errors_total", "Server logins that failed.")
	descClosed    = poolDesc("pgninja_pool_closed_total", "Server connections closed.")
	descCheckFail = poolDesc("pgninja_pool_idle_check_failures_total", "Idle connections that failed the check before being lent.")
	descResetFail = poolDesc("pgninja_pool_reset_failures_total", "Connections closed because their reset or rollback failed.")
)

func (c poolCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{descConns, descWaiting, descDown, descAcquires, descWaits,
		descTimeouts, descDials, descDialErrs, descClosed, descCheckFail, descResetFail} {
		ch <- d
	}
}

func (c poolCollector) Collect(ch chan<- prometheus.Metric) {
	now := time.Now()
	c.m.Each(func(k Key, p *Pool) {
		s := p.Stats()
		lv := []string{k.Backend, k.Database, k.User}
		gauge := func(d *prometheus.Desc, v float64, extra ...string) {
			ch <- prometheus.MustNewConstMetric(d, prometheus.GaugeValue, v, append(lv, extra...)...)
		}
		counter := func(d *prometheus.Desc, v uint64) {
			ch <- prometheus.MustNewConstMetric(d, prometheus.CounterValue, float64(v), lv...)
		}
		gauge(descConns, float64(s.Total-s.Idle-s.Opening-s.Testing), "active")
		gauge(descConns, float64(s.Idle), "idle")
		gauge(descConns, float64(s.Opening), "opening")
		gauge(descConns, float64(s.Testing), "testing")
		gauge(descWaiting, float64(s.Waiting))
		down := 0.0
		if !s.DownSince.IsZero() {
			down = now.Sub(s.DownSince).Seconds()
		}
		gauge(descDown, down)
		counter(descAcquires, s.Acquires)
		counter(descWaits, s.Waits)
		counter(descTimeouts, s.Timeouts)
		counter(descDials, s.Dials)
		counter(descDialErrs, s.DialErrors)
		counter(descClosed, s.Closed)
		counter(descCheckFail, s.HealthCheckFails)
		counter(descResetFail, s.ResetFailure)
	})
}
