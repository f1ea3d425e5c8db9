package sidecar

import (
	"errors"
	"log/slog"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// Job kinds, the "job" label of every sidecar metric.
const (
	JobPartitions = "partitions"
	JobBackup     = "backup"
	JobVerify     = "verify"
	JobRetention  = "retention"
	JobStats      = "stats"
	JobBase       = "base_backup"
	JobWAL        = "wal_archive"
)

// metrics are per job kind, so one alert rule covers every job: e.g.
// time() - pgninja_sidecar_last_success_timestamp_seconds{job="backup"} > 26h.
type metrics struct {
	lastSuccess *prometheus.GaugeVec
	duration    *prometheus.GaugeVec
	size        *prometheus.GaugeVec
	runs        *prometheus.CounterVec
	failures    *prometheus.CounterVec
	future      *prometheus.GaugeVec
	defaultRows *prometheus.GaugeVec
}

func newMetrics(reg prometheus.Registerer) (*metrics, error) {
	job := []string{"job"}
	m := &metrics{
		lastSuccess: prometheus.NewGaugeVec(prometheus.GaugeOpts{Namespace: "pgninja", Subsystem: "sidecar",
			Name: "last_success_timestamp_seconds", Help: "Unix time of the job's last successful run."}, job),
		duration: prometheus.NewGaugeVec(prometheus.GaugeOpts{Namespace: "pgninja", Subsystem: "sidecar",
			Name: "last_duration_seconds", Help: "Duration of the job's last run, successful or not."}, job),
		size: prometheus.NewGaugeVec(prometheus.GaugeOpts{Namespace: "pgninja", Subsystem: "sidecar",
			Name: "last_size_bytes", Help: "Size the job's last successful run produced or covered (backup file, restored rows' bytes, managed tables)."}, job),
		runs: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: "pgninja", Subsystem: "sidecar",
			Name: "runs_total", Help: "Runs of the job."}, job),
		failures: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: "pgninja", Subsystem: "sidecar",
			Name: "failures_total", Help: "Failed runs of the job."}, job),
		future: prometheus.NewGaugeVec(prometheus.GaugeOpts{Namespace: "pgninja", Subsystem: "partitions",
			Name: "future", Help: "Partitions starting after the current interval."}, []string{"table"}),
		defaultRows: prometheus.NewGaugeVec(prometheus.GaugeOpts{Namespace: "pgninja", Subsystem: "partitions",
			Name: "default_rows", Help: "Rows in the table's DEFAULT partition (should be 0)."}, []string{"table"}),
	}
	if reg == nil {
		return m, nil
	}
	for _, c := range []prometheus.Collector{m.lastSuccess, m.duration, m.size, m.runs, m.failures, m.future, m.defaultRows} {
		if err := reg.Register(c); err != nil {
			var are prometheus.AlreadyRegisteredError
			if !errors.As(err, &are) {
				return nil, err
			}
		}
	}
	return m, nil
}

// init makes the series exist from the start, so "no success yet" and
// "zero failures" are visible before the first run.
func (m *metrics) init(jobs ...string) {
	for _, j := range jobs {
		m.runs.WithLabelValues(j)
		m.failures.WithLabelValues(j)
		m.lastSuccess.WithLabelValues(j)
	}
}

// record logs a job's outcome and updates its metrics.
func (m *metrics) record(log *slog.Logger, job string, started time.Time, size int64, err error, attrs ...any) {
	d := time.Since(started)
	m.runs.WithLabelValues(job).Inc()
	m.duration.WithLabelValues(job).Set(d.Seconds())
	attrs = append([]any{"job", job, "seconds", d.Seconds()}, attrs...)
	if err != nil {
		m.failures.WithLabelValues(job).Inc()
		log.Error("sidecar job failed", append(attrs, "err", err)...)
		return
	}
	m.lastSuccess.WithLabelValues(job).Set(float64(time.Now().Unix()))
	m.size.WithLabelValues(job).Set(float64(size))
	log.Info("sidecar job done", append(attrs, "bytes", size)...)
}
