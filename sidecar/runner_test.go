package sidecar

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"

	"github.com/ai-ninja/pgninja/config"
	"github.com/ai-ninja/pgninja/migrations"
	"github.com/ai-ninja/pgninja/sidecar/pgtool/pgtest"
)

// runnerConfig is a config like the demo's, pointed at a fresh migrated
// database on the test bed.
func runnerConfig(t *testing.T, extra ...string) *config.Config {
	t.Helper()
	bed := pgtest.Require(t)
	db := bed.NewDB(t)
	if err := migrations.Up(context.Background(), db); err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	key := make([]byte, 32)
	rand.Read(key)
	if err := os.WriteFile(filepath.Join(dir, "backup.key"), []byte(hex.EncodeToString(key)+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	yaml := fmt.Sprintf(`
backends:
  - {name: primary, host: %s, port: %d, role: primary}
  - {name: replica, host: %s, port: %d, role: replica}
users:
  - {name: %s, password: %s}
sidecar:
  database: %s
  partitions: {enabled: true, schedule: "@every 1s"}
  backup: {enabled: true, dir: backups, key_file: backup.key}
  stats: {enabled: true}
`, bed.Primary.Host, bed.Primary.Port, bed.Replica.Host, bed.Replica.Port, pgtest.AppUser, pgtest.AppPassword, db.Database)
	path := filepath.Join(dir, "pgninja.yaml")
	os.WriteFile(path, []byte(yaml), 0o600)
	t.Setenv("PGNINJA_BACKUP_KEY", "")
	cfg, err := config.Load(path, extra)
	if err != nil {
		t.Fatal(err)
	}
	bed.WaitReplica(t)
	return cfg
}

func TestRunnerJobsReportMetrics(t *testing.T) {
	ctx := context.Background()
	cfg := runnerConfig(t)
	reg := prometheus.NewRegistry()
	r, err := New(cfg, nil, reg)
	if err != nil {
		t.Fatal(err)
	}
	for _, job := range []string{JobPartitions, JobBackup, JobStats} {
		if err := r.RunJob(ctx, job); err != nil {
			t.Fatalf("%s: %v", job, err)
		}
	}
	if v := value(r.metrics.future.WithLabelValues("call_records")); v != 4 {
		t.Fatalf("future partitions gauge %v", v)
	}
	for _, job := range []string{JobPartitions, JobBackup, JobVerify, JobRetention, JobStats} {
		if v := value(r.metrics.lastSuccess.WithLabelValues(job)); v < float64(time.Now().Add(-time.Minute).Unix()) {
			t.Errorf("%s last success %v", job, v)
		}
		if v := value(r.metrics.failures.WithLabelValues(job)); v != 0 {
			t.Errorf("%s failures %v", job, v)
		}
	}
	if v := value(r.metrics.size.WithLabelValues(JobBackup)); v <= 0 {
		t.Errorf("backup size %v", v)
	}
	backups, err := r.backups.List(ctx)
	if err != nil || len(backups) != 1 || backups[0].Status() != "verified" {
		t.Fatalf("backups %+v %v", backups, err)
	}

	// A failing job counts a failure and leaves the last success alone.
	last := value(r.metrics.lastSuccess.WithLabelValues(JobBackup))
	r.backups.Sources[0].Target.Port, r.backups.Sources[1].Target.Port = 1, 1
	if err := r.RunJob(ctx, JobBackup); err == nil {
		t.Fatal("backup from an unreachable source succeeded")
	}
	if v := value(r.metrics.failures.WithLabelValues(JobBackup)); v != 1 {
		t.Errorf("failures %v", v)
	}
	if v := value(r.metrics.lastSuccess.WithLabelValues(JobBackup)); v != last {
		t.Errorf("last success moved on failure")
	}
	if backups, _ := r.backups.List(ctx); len(backups) != 1 {
		t.Fatalf("failed job changed the backups: %d", len(backups))
	}
}

func TestRunnerRunsSchedulesUntilCancelled(t *testing.T) {
	cfg := runnerConfig(t, "sidecar.backup.enabled=false", "sidecar.stats.enabled=false")
	r, err := New(cfg, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2500*time.Millisecond)
	defer cancel()
	done := make(chan error)
	go func() { done <- r.Run(ctx) }()
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("Run did not return after its context ended")
	}
	// Once at start plus about two ticks of "@every 1s".
	if n := value(r.metrics.runs.WithLabelValues(JobPartitions)); n < 2 {
		t.Fatalf("partition job ran %v times", n)
	}
}

func TestNewRefusesBackupWithoutKey(t *testing.T) {
	cfg, err := config.Parse([]byte(base+"sidecar:\n  backup:\n    enabled: true\n    dir: "+t.TempDir()+"\n"), nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Setenv("PGNINJA_BACKUP_KEY", "")
	if _, err := New(cfg, nil, nil); err == nil {
		t.Fatal("want an error about the missing key")
	}
}

// value reads one gauge or counter.
func value(c prometheus.Collector) float64 {
	ch := make(chan prometheus.Metric, 1)
	c.Collect(ch)
	var m dto.Metric
	if err := (<-ch).Write(&m); err != nil {
		panic(err)
	}
	if m.Gauge != nil {
		return m.Gauge.GetValue()
	}
	return m.Counter.GetValue()
}

func TestRunnerArchivesWALAndTakesBaseBackups(t *testing.T) {
	bed := pgtest.Require(t)
	slot := fmt.Sprintf("pgninja_runner_%d", time.Now().UnixNano()%1e9)
	dsn := fmt.Sprintf("postgres://replicator:replicator@%s:%d/postgres?sslmode=disable", bed.Primary.Host, bed.Primary.Port)
	cfg := runnerConfig(t, "sidecar.backup.enabled=false", "sidecar.stats.enabled=false", "sidecar.partitions.enabled=false",
		"sidecar.pitr.enabled=true", "sidecar.pitr.dsn="+dsn, "sidecar.pitr.slot="+slot)
	super := pgtest.Connect(t, bed.Primary)
	t.Cleanup(func() {
		super.Exec(context.Background(), "SELECT pg_drop_replication_slot($1) FROM pg_replication_slots WHERE slot_name = $1", slot)
	})
	r, err := New(cfg, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	r.archiver.Interval = 100 * time.Millisecond
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error)
	go func() { done <- r.Run(ctx) }()
	defer func() { cancel(); <-done }()
	if err := r.RunJob(ctx, JobBase); err != nil {
		t.Fatal(err)
	}
	super.Exec(context.Background(), "SELECT pg_switch_wal()")
	deadline := time.Now().Add(60 * time.Second)
	for value(r.metrics.lastSuccess.WithLabelValues(JobWAL)) == 0 {
		if time.Now().After(deadline) {
			t.Fatal("no WAL archived")
		}
		time.Sleep(100 * time.Millisecond)
	}
	if value(r.metrics.lastSuccess.WithLabelValues(JobBase)) == 0 || value(r.metrics.size.WithLabelValues(JobBase)) <= 0 {
		t.Fatal("base backup not recorded")
	}
}
