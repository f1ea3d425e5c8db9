package config

import (
	"fmt"
	"regexp"
	"time"

	"github.com/robfig/cron/v3"
)

// Sidecar configures the maintenance loop that runs beside the proxy:
// partition management, backups and the dashboard statistics refresh. The
// same settings drive the `pgninja partitions|backup` commands.
type Sidecar struct {
	// DSN is the primary the sidecar maintains; empty means it is derived
	// from the primary backend, the first configured user and Database.
	DSN string `yaml:"dsn"`
	// Database is the database maintained when DSN is empty.
	Database string `yaml:"database"`
	// PgBinDir holds pg_dump and pg_restore; empty means
	// /usr/lib/postgresql/<server major>/bin when present, else $PATH.
	PgBinDir string `yaml:"pg_bin_dir"`
	// LockTimeout bounds how long partition DDL waits for table locks, so
	// maintenance never queues client queries behind it for long.
	LockTimeout time.Duration `yaml:"lock_timeout"`

	Partitions Partitions `yaml:"partitions"`
	Backup     Backup     `yaml:"backup"`
	Stats      Stats      `yaml:"stats"`
	PITR       PITR       `yaml:"pitr"`
}

// PITR configures point-in-time recovery: continuous WAL archiving with
// pg_receivewal and scheduled pg_basebackup base backups, sealed with the
// backup key into the backup store.
type PITR struct {
	Enabled bool `yaml:"enabled"`
	// DSN reaches the primary as a role with the REPLICATION attribute
	// (the application user normally lacks it).
	DSN string `yaml:"dsn"`
	// Slot is the physical replication slot that keeps WAL on the server
	// until it is archived.
	Slot string `yaml:"slot"`
	// WALDir is pg_receivewal's local directory (relative to the config
	// file); completed segments move from it into the store.
	WALDir       string `yaml:"wal_dir"`
	BaseSchedule string `yaml:"base_schedule"`
	// KeepBase base backups are kept, with the WAL needed from the oldest.
	KeepBase int `yaml:"keep_base"`
}

// Partitions lists the tables whose partitions are managed.
type Partitions struct {
	// Enabled runs the partition job on Schedule inside `pgninja serve`;
	// the `pgninja partitions` commands work either way.
	Enabled  bool   `yaml:"enabled"`
	Schedule string `yaml:"schedule"`
	// Tables defaults to call_records and conversations, monthly.
	Tables []PartitionTable `yaml:"tables"`
}

// PartitionTable is one range-partitioned table.
type PartitionTable struct {
	// Table is the partitioned parent, optionally schema-qualified.
	Table string `yaml:"table"`
	// Interval is day, week (ISO, Monday) or month; boundaries are UTC.
	Interval string `yaml:"interval"`
	// Premake is how many future partitions exist beyond the current one.
	Premake int `yaml:"premake"`
	// Retention keeps this many whole intervals before the current one;
	// 0 keeps everything.
	Retention int `yaml:"retention"`
	// RetentionAction is detach (the table stays, outside the parent) or
	// drop.
	RetentionAction string `yaml:"retention_action"`
	// ArchiveBeforeDrop COPYs a partition to a zstd file in the backup
	// store and verifies it before dropping.
	ArchiveBeforeDrop bool `yaml:"archive_before_drop"`
	// MoveDefaultRows moves rows found in the DEFAULT partition into
	// proper partitions, creating them as needed.
	MoveDefaultRows bool `yaml:"move_default_rows"`
}

// Backup configures scheduled, encrypted logical backups.
type Backup struct {
	// Enabled runs the backup job on Schedule inside `pgninja serve`.
	Enabled  bool   `yaml:"enabled"`
	Schedule string `yaml:"schedule"`
	// Dir is the local backup store; relative paths are relative to the
	// config file.
	Dir string `yaml:"dir"`
	// KeyFile holds the 32-byte AES key as hex or base64. The environment
	// variable PGNINJA_BACKUP_KEY, when set, wins.
	KeyFile string `yaml:"key_file"`
	// Source is replica (default; falls back to the primary when no
	// replica answers) or primary.
	Source string `yaml:"source"`
	// SourceDSN overrides the server pg_dump reads from.
	SourceDSN string `yaml:"source_dsn"`
	// SkipVerify turns off the test restore after each scheduled backup.
	SkipVerify bool `yaml:"skip_verify"`
	// Compression is the zstd level: fastest, default, better or best.
	Compression string `yaml:"compression"`
	// Timeout bounds one backup or verify job.
	Timeout time.Duration `yaml:"timeout"`

	KeepLast   int `yaml:"keep_last"`
	KeepDaily  int `yaml:"keep_daily"`
	KeepWeekly int `yaml:"keep_weekly"`
}

// Stats configures the periodic refresh of the dashboard materialized
// views (the refresh_dashboard_stats() function from the migrations).
type Stats struct {
	Enabled  bool   `yaml:"enabled"`
	Schedule string `yaml:"schedule"`
}

// DefaultSidecar returns the sidecar settings with every default filled
// in, for commands that run with a --dsn and no config file.
func DefaultSidecar() Sidecar {
	var s Sidecar
	s.fillDefaults()
	return s
}

func (s *Sidecar) fillDefaults() {
	if s.Database == "" {
		s.Database = "ai_ninja"
	}
	if s.LockTimeout == 0 {
		s.LockTimeout = 10 * time.Second
	}
	p := &s.Partitions
	if p.Schedule == "" {
		p.Schedule = "@hourly"
	}
	if len(p.Tables) == 0 {
		p.Tables = []PartitionTable{{Table: "call_records"}, {Table: "conversations"}}
	}
	for i := range p.Tables {
		t := &p.Tables[i]
		if t.Interval == "" {
			t.Interval = "month"
		}
		if t.Premake == 0 {
			t.Premake = 4
		}
		if t.RetentionAction == "" {
			t.RetentionAction = "detach"
		}
	}
	b := &s.Backup
	if b.Schedule == "" {
		b.Schedule = "0 3 * * *"
	}
	if b.Dir == "" {
		b.Dir = "backups"
	}
	if b.Source == "" {
		b.Source = "replica"
	}
	if b.Compression == "" {
		b.Compression = "default"
	}
	if b.Timeout == 0 {
		b.Timeout = 6 * time.Hour
	}
	if b.KeepLast == 0 {
		b.KeepLast = 7
	}
	if b.KeepDaily == 0 {
		b.KeepDaily = 7
	}
	if b.KeepWeekly == 0 {
		b.KeepWeekly = 4
	}
	if s.Stats.Schedule == "" {
		s.Stats.Schedule = "*/15 * * * *"
	}
	r := &s.PITR
	if r.Slot == "" {
		r.Slot = "pgninja_wal"
	}
	if r.WALDir == "" {
		r.WALDir = "wal-receive"
	}
	if r.BaseSchedule == "" {
		r.BaseSchedule = "0 2 * * 0"
	}
	if r.KeepBase == 0 {
		r.KeepBase = 2
	}
}

// identRE accepts a table name or schema.table made of plain identifiers;
// the sidecar quotes them, but odd names are far more likely typos.
var identRE = regexp.MustCompile(`^([A-Za-z_][A-Za-z0-9_$]*\.)?[A-Za-z_][A-Za-z0-9_$]*$`)

func (s *Sidecar) validate(p *problems) {
	if s.LockTimeout < 0 {
		p.add("sidecar.lock_timeout", "must be >= 0")
	}
	checkCron(p, "sidecar.partitions.schedule", s.Partitions.Schedule)
	seen := map[string]bool{}
	for i, t := range s.Partitions.Tables {
		f := fmt.Sprintf("sidecar.partitions.tables[%d]", i)
		switch {
		case t.Table == "":
			p.add(f+".table", "must be set")
		case !identRE.MatchString(t.Table):
			p.add(f+".table", "must be a table name or schema.table, not %q", t.Table)
		case seen[t.Table]:
			p.add(f+".table", "duplicate table %q", t.Table)
		}
		seen[t.Table] = true
		oneOf(p, f+".interval", t.Interval, "day", "week", "month")
		positive(p, f+".premake", t.Premake)
		if t.Retention < 0 {
			p.add(f+".retention", "must be >= 0")
		}
		oneOf(p, f+".retention_action", t.RetentionAction, "detach", "drop")
		if t.ArchiveBeforeDrop && t.RetentionAction != "drop" {
			p.add(f+".archive_before_drop", "needs retention_action: drop")
		}
	}
	b := s.Backup
	checkCron(p, "sidecar.backup.schedule", b.Schedule)
	oneOf(p, "sidecar.backup.source", b.Source, "replica", "primary")
	oneOf(p, "sidecar.backup.compression", b.Compression, "fastest", "default", "better", "best")
	if b.Timeout <= 0 {
		p.add("sidecar.backup.timeout", "must be > 0")
	}
	positive(p, "sidecar.backup.keep_last", b.KeepLast)
	if b.KeepDaily < 0 {
		p.add("sidecar.backup.keep_daily", "must be >= 0")
	}
	if b.KeepWeekly < 0 {
		p.add("sidecar.backup.keep_weekly", "must be >= 0")
	}
	checkCron(p, "sidecar.stats.schedule", s.Stats.Schedule)
	checkCron(p, "sidecar.pitr.base_schedule", s.PITR.BaseSchedule)
	positive(p, "sidecar.pitr.keep_base", s.PITR.KeepBase)
	if s.PITR.Enabled && s.PITR.DSN == "" {
		p.add("sidecar.pitr.dsn", "must be set when pitr is enabled (a role with REPLICATION)")
	}
	if !slotRE.MatchString(s.PITR.Slot) {
		p.add("sidecar.pitr.slot", "must be lower-case letters, digits and underscores, not %q", s.PITR.Slot)
	}
}

var slotRE = regexp.MustCompile(`^[a-z0-9_]{1,63}$`)

func checkCron(p *problems, field, spec string) {
	if _, err := cron.ParseStandard(spec); err != nil {
		p.add(field, "not a cron expression: %v", err)
	}
}
