package sidecar

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/robfig/cron/v3"

	"github.com/ai-ninja/pgninja/config"
	"github.com/ai-ninja/pgninja/sidecar/backup"
	"github.com/ai-ninja/pgninja/sidecar/partition"
	"github.com/ai-ninja/pgninja/sidecar/pgtool"
	"github.com/ai-ninja/pgninja/sidecar/pitr"
)

// Runner runs the enabled jobs on their schedules.
type Runner struct {
	cfg        config.Sidecar
	log        *slog.Logger
	metrics    *metrics
	primary    pgtool.Target
	partitions *partition.Manager
	backups    *backup.Service
	archiver   *pitr.Archiver
	pitrSource pgtool.Target
}

// New checks the sidecar's settings and registers its metrics on reg (nil
// registers nothing). Problems that would make a scheduled job fail every
// time, such as an enabled backup without a key, are reported here, at
// startup, rather than at 3 a.m.
func New(cfg *config.Config, logger *slog.Logger, reg prometheus.Registerer) (*Runner, error) {
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	logger = logger.With("component", "sidecar")
	r := &Runner{cfg: cfg.Sidecar, log: logger}
	var err error
	if r.metrics, err = newMetrics(reg); err != nil {
		return nil, err
	}
	s := cfg.Sidecar
	if !s.Partitions.Enabled && !s.Backup.Enabled && !s.Stats.Enabled && !s.PITR.Enabled {
		return r, nil
	}
	if r.primary, err = PrimaryTarget(cfg); err != nil {
		return nil, err
	}
	if s.Partitions.Enabled {
		if r.partitions, err = PartitionManager(cfg, logger); err != nil {
			return nil, err
		}
		r.metrics.init(JobPartitions)
	}
	if s.Backup.Enabled {
		if r.backups, err = BackupService(cfg, logger); err != nil {
			return nil, err
		}
		if r.backups.Key == nil {
			_, err := LoadKey(cfg)
			return nil, fmt.Errorf("sidecar.backup.enabled: %w", err)
		}
		r.metrics.init(JobBackup, JobVerify, JobRetention)
	}
	if s.Stats.Enabled {
		r.metrics.init(JobStats)
	}
	if s.PITR.Enabled {
		key, err := LoadKey(cfg)
		if err != nil {
			return nil, fmt.Errorf("sidecar.pitr.enabled: %w", err)
		}
		if r.pitrSource, err = PITRTarget(cfg); err != nil {
			return nil, err
		}
		if r.archiver, err = Archiver(cfg, logger, key, 0); err != nil {
			return nil, err
		}
		r.archiver.OnPass = func(n int, err error) {
			r.metrics.record(r.log, JobWAL, time.Now(), int64(n), err, "segments", n)
		}
		r.metrics.init(JobBase, JobWAL)
	}
	return r, nil
}

// Run runs the schedules until ctx is done, then waits for running jobs
// (which see ctx cancelled) to stop. Partition maintenance also runs once
// at start, so a fresh deployment has its partitions without waiting for
// the first tick.
func (r *Runner) Run(ctx context.Context) error {
	if r.partitions == nil && r.backups == nil && !r.cfg.Stats.Enabled && r.archiver == nil {
		<-ctx.Done()
		return nil
	}
	cl := cronLogger{r.log}
	c := cron.New(cron.WithLogger(cl), cron.WithChain(cron.Recover(cl), cron.SkipIfStillRunning(cl)))
	add := func(spec, job string) error {
		_, err := c.AddFunc(spec, func() { r.RunJob(ctx, job) })
		if err != nil {
			return fmt.Errorf("schedule %s %q: %w", job, spec, err)
		}
		r.log.Info("sidecar job scheduled", "job", job, "schedule", spec)
		return nil
	}
	if r.partitions != nil {
		if err := add(r.cfg.Partitions.Schedule, JobPartitions); err != nil {
			return err
		}
		// Through cron's chain, so it cannot overlap a scheduled run.
		c.Schedule(&onceNow{}, cron.FuncJob(func() { r.RunJob(ctx, JobPartitions) }))
	}
	if r.backups != nil {
		if err := add(r.cfg.Backup.Schedule, JobBackup); err != nil {
			return err
		}
	}
	if r.cfg.Stats.Enabled {
		if err := add(r.cfg.Stats.Schedule, JobStats); err != nil {
			return err
		}
	}
	archived := make(chan struct{})
	if r.archiver != nil {
		if err := add(r.cfg.PITR.BaseSchedule, JobBase); err != nil {
			return err
		}
		r.archiver.ServerMajor = r.serverMajor(ctx)
		go func() {
			defer close(archived)
			if err := r.archiver.Run(ctx); err != nil {
				r.metrics.record(r.log, JobWAL, time.Now(), 0, err)
			}
		}()
	} else {
		close(archived)
	}
	c.Start()
	<-ctx.Done()
	<-c.Stop().Done()
	<-archived
	return nil
}

// RunJob runs one job now and returns its error (also logged and counted).
// The backup job verifies (unless skip_verify) and applies retention only
// when everything before succeeded, so a failed job never deletes a good
// backup.
func (r *Runner) RunJob(ctx context.Context, job string) error {
	switch job {
	case JobPartitions:
		if r.partitions == nil {
			return errors.New("partitions are not enabled")
		}
		return r.partitionJob(ctx)
	case JobBackup:
		if r.backups == nil {
			return errors.New("backups are not enabled")
		}
		return r.backupJob(ctx)
	case JobStats:
		return r.statsJob(ctx)
	case JobBase:
		if r.archiver == nil {
			return errors.New("pitr is not enabled")
		}
		return r.baseJob(ctx)
	}
	return fmt.Errorf("unknown job %q", job)
}

func (r *Runner) partitionJob(ctx context.Context) (err error) {
	started := time.Now()
	var size int64
	var actions int
	defer func() { r.metrics.record(r.log, JobPartitions, started, size, err, "actions", actions) }()
	conn, err := pgtool.Connect(ctx, r.primary)
	if err != nil {
		return err
	}
	defer conn.Close(context.WithoutCancel(ctx))
	res, err := r.partitions.Run(ctx, conn, partition.RunOptions{})
	if res != nil {
		actions = len(res.Actions)
	}
	st, serr := r.partitions.Status(ctx, conn)
	for _, t := range st {
		size += t.Bytes
		r.metrics.future.WithLabelValues(t.Spec.Table).Set(float64(t.Future))
		if t.Default != nil {
			r.metrics.defaultRows.WithLabelValues(t.Spec.Table).Set(float64(t.Default.Rows))
		}
		for _, p := range t.Problems {
			r.log.Warn("partition health", "table", t.Spec.Table, "problem", p)
		}
	}
	return errors.Join(err, serr)
}

func (r *Runner) backupJob(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, r.cfg.Backup.Timeout)
	defer cancel()
	started := time.Now()
	m, err := r.backups.Run(ctx)
	if errors.Is(err, backup.ErrBusy) {
		r.log.Info("backup skipped", "reason", err)
		return nil
	}
	var size int64
	var attrs []any
	if m != nil {
		size = m.File.Size
		attrs = []any{"backup", m.ID, "rows", m.Rows()}
	}
	r.metrics.record(r.log, JobBackup, started, size, err, attrs...)
	if err != nil {
		return err
	}
	if !r.cfg.Backup.SkipVerify {
		started = time.Now()
		rec, err := r.backups.Verify(ctx, m.ID)
		r.metrics.record(r.log, JobVerify, started, m.DumpBytes, err, "backup", m.ID)
		if err != nil || rec.Status != backup.StatusVerified {
			return fmt.Errorf("verify %s: %w", m.ID, err)
		}
	}
	started = time.Now()
	deleted, err := r.backups.ApplyRetention(ctx)
	r.metrics.record(r.log, JobRetention, started, 0, err, "deleted", len(deleted))
	return err
}

func (r *Runner) statsJob(ctx context.Context) (err error) {
	started := time.Now()
	defer func() { r.metrics.record(r.log, JobStats, started, 0, err) }()
	conn, err := pgtool.Connect(ctx, r.primary)
	if err != nil {
		return err
	}
	defer conn.Close(context.WithoutCancel(ctx))
	_, err = conn.Exec(ctx, "SELECT count(*) FROM refresh_dashboard_stats()")
	return err
}

// baseJob takes a base backup, then drops base backups (and the WAL only
// they needed) beyond keep_base.
func (r *Runner) baseJob(ctx context.Context) (err error) {
	started := time.Now()
	var size int64
	defer func() { r.metrics.record(r.log, JobBase, started, size, err) }()
	m, err := pitr.TakeBase(ctx, r.archiver.Store, r.archiver.Key, r.archiver.Tools, r.pitrSource, r.serverMajor(ctx), started)
	if err != nil {
		return err
	}
	size = m.Size
	bases, segs, err := pitr.Prune(ctx, r.archiver.Store, r.cfg.PITR.KeepBase)
	if bases+segs > 0 {
		r.log.Info("pitr retention", "bases_deleted", bases, "wal_deleted", segs)
	}
	return err
}

// serverMajor asks the primary its major version, so the matching
// pg_receivewal and pg_basebackup are used; 0 (PATH) if it cannot tell.
func (r *Runner) serverMajor(ctx context.Context) int {
	cctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	conn, err := pgtool.Connect(cctx, r.primary)
	if err != nil {
		return 0
	}
	defer conn.Close(context.WithoutCancel(ctx))
	return pgtool.ServerMajor(conn)
}

// onceNow is a cron schedule that fires once, immediately (cron asks for
// the next time when the entry is added, then after each run).
type onceNow struct{ asked bool }

func (o *onceNow) Next(t time.Time) time.Time {
	if o.asked {
		return time.Time{} // zero: never again
	}
	o.asked = true
	return t
}

// cronLogger adapts slog to cron's logger.
type cronLogger struct{ l *slog.Logger }

func (c cronLogger) Info(msg string, kv ...any) { c.l.Debug("cron: "+msg, kv...) }
func (c cronLogger) Error(err error, msg string, kv ...any) {
	c.l.Error("cron: "+msg, append(kv, "err", err)...)
}
