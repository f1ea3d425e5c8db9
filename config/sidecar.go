package config

import "time"

// Sidecar configures the maintenance loop that runs beside the proxy:
// partition management and backups.
type Sidecar struct {
	// DSN is the primary the sidecar maintains; empty means it is derived
	// from the primary backend and the first configured user.
	DSN        string        `yaml:"dsn"`
	Partitions PartitionsSet `yaml:"partitions"`
	Backup     Backup        `yaml:"backup"`
	Interval   time.Duration `yaml:"interval"`
}

// PartitionsSet lists the tables whose partitions are managed.
type PartitionsSet struct {
	Enabled  bool             `yaml:"enabled"`
	Schedule string           `yaml:"schedule"`
	Tables   []PartitionTable `yaml:"tables"`
}

// PartitionTable is one range-partitioned table.
type PartitionTable struct {
	Table     string `yaml:"table"`
	Interval  string `yaml:"interval"`
	Premake   int    `yaml:"premake"`
	Retention int    `yaml:"retention"`
	// RetentionAction is detach or drop.
	RetentionAction   string `yaml:"retention_action"`
	ArchiveBeforeDrop bool   `yaml:"archive_before_drop"`
}

// Backup configures scheduled logical backups.
type Backup struct {
	Enabled  bool   `yaml:"enabled"`
	Schedule string `yaml:"schedule"`
	Dir      string `yaml:"dir"`
}

func (s *Sidecar) fillDefaults() {}

func (s *Sidecar) validate(p *problems) {}
