package sidecar

import (
	"strings"
	"testing"

	"github.com/ai-ninja/pgninja/config"
)

const base = `
backends:
  - {name: primary, host: 127.0.0.1, port: 15432, role: primary}
  - {name: replica, host: 127.0.0.1, port: 15433, role: replica}
users:
  - {name: ninja, password: ninja}
`

func TestSidecarConfigValidation(t *testing.T) {
	tests := []struct {
		name string
		yaml string
		want []string
	}{
		{"keep_last", "sidecar:\n  backup:\n    keep_last: -1\n", []string{"sidecar.backup.keep_last: must be > 0"}},
		{"bad cron", "sidecar:\n  backup:\n    schedule: 'every day'\n", []string{"sidecar.backup.schedule: not a cron expression"}},
		{"table problems", "sidecar:\n  partitions:\n    tables:\n      - {table: 'x;drop', interval: year, premake: -1, retention_action: burn, archive_before_drop: true}\n",
			[]string{"sidecar.partitions.tables[0].table: must be a table name", "sidecar.partitions.tables[0].interval: must be one of",
				"sidecar.partitions.tables[0].premake: must be > 0", "sidecar.partitions.tables[0].retention_action: must be one of",
				"sidecar.partitions.tables[0].archive_before_drop: needs retention_action: drop"}},
		{"source", "sidecar:\n  backup:\n    source: tape\n    compression: max\n", []string{"sidecar.backup.source: must be one of", "sidecar.backup.compression: must be one of"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := config.Parse([]byte(base+tt.yaml), nil, nil)
			if err == nil {
				t.Fatal("want an error")
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("%q does not contain %q", err, w)
				}
			}
		})
	}
}

func TestSidecarDefaultsAndTargets(t *testing.T) {
	cfg, err := config.Parse([]byte(base), []string{"sidecar.backup.keep_daily=3"}, []string{"PGNINJA_SIDECAR_BACKUP_DIR=/b"})
	if err != nil {
		t.Fatal(err)
	}
	s := cfg.Sidecar
	if len(s.Partitions.Tables) != 2 || s.Partitions.Tables[0].Premake != 4 || s.Partitions.Tables[1].Interval != "month" ||
		s.Backup.KeepDaily != 3 || s.Backup.Dir != "/b" || s.Backup.Source != "replica" || s.Database != "ai_ninja" {
		t.Fatalf("defaults: %+v", s)
	}
	p, err := PrimaryTarget(cfg)
	if err != nil || p.String() != "ninja@127.0.0.1:15432/ai_ninja" || p.Password != "ninja" {
		t.Fatalf("primary %v %v", p, err)
	}
	src, err := BackupSources(cfg)
	if err != nil || len(src) != 2 || src[0].Role != "replica" || src[0].Target.Port != 15433 || src[1].Role != "primary" {
		t.Fatalf("sources %+v %v", src, err)
	}
	cfg.Sidecar.DSN = "postgres://ops:pw@db:5433/other"
	if p, _ := PrimaryTarget(cfg); p.String() != "ops@db:5433/other" {
		t.Fatalf("dsn: %v", p)
	}
}
