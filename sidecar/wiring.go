package sidecar

import (
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"

	"github.com/klauspost/compress/zstd"

	"github.com/ai-ninja/pgninja/config"
	"github.com/ai-ninja/pgninja/sidecar/backup"
	"github.com/ai-ninja/pgninja/sidecar/partition"
	"github.com/ai-ninja/pgninja/sidecar/pgtool"
	"github.com/ai-ninja/pgninja/sidecar/pitr"
	"github.com/ai-ninja/pgninja/sidecar/sealed"
	"github.com/ai-ninja/pgninja/sidecar/storage"
)

// credentials are the first configured user's server-side login: the
// sidecar is an operator of the same database the proxy serves.
func credentials(cfg *config.Config) (user, password string, err error) {
	if len(cfg.Users) == 0 {
		return "", "", errors.New("no users configured: set sidecar.dsn or add a user")
	}
	u := cfg.Users[0]
	user, password = u.Name, u.Password
	if u.ServerUser != "" {
		user, password = u.ServerUser, u.ServerPassword
	}
	return user, password, nil
}

func backendTarget(cfg *config.Config, b config.Backend) (pgtool.Target, error) {
	user, pw, err := credentials(cfg)
	if err != nil {
		return pgtool.Target{}, err
	}
	return pgtool.Target{Host: b.Host, Port: b.Port, User: user, Password: pw,
		Database: cfg.Sidecar.Database, SSLMode: cfg.TLS.BackendMode, SSLFiles: cfg.TLS.BackendFiles()}, nil
}

// PrimaryTarget is the database the sidecar maintains: sidecar.dsn, or
// the primary backend with the first user's credentials.
func PrimaryTarget(cfg *config.Config) (pgtool.Target, error) {
	if cfg.Sidecar.DSN != "" {
		t, err := pgtool.ParseDSN(cfg.Sidecar.DSN)
		if err != nil {
			return t, fmt.Errorf("sidecar.dsn: %w", err)
		}
		return t, nil
	}
	p := cfg.Primary()
	if p.Host == "" {
		return pgtool.Target{}, errors.New("no primary backend: set backends or sidecar.dsn")
	}
	return backendTarget(cfg, p)
}

// BackupSources are the servers pg_dump may read from, in order of
// preference: sidecar.backup.source_dsn alone when set; otherwise the
// replicas then the primary (source: replica), or the primary alone.
func BackupSources(cfg *config.Config) ([]backup.Source, error) {
	b := cfg.Sidecar.Backup
	if b.SourceDSN != "" {
		t, err := pgtool.ParseDSN(b.SourceDSN)
		if err != nil {
			return nil, fmt.Errorf("sidecar.backup.source_dsn: %w", err)
		}
		return []backup.Source{{Role: "source_dsn", Target: t}}, nil
	}
	primary, err := PrimaryTarget(cfg)
	if err != nil {
		return nil, err
	}
	var out []backup.Source
	if b.Source == "replica" {
		for _, be := range cfg.Backends {
			if be.Role == config.RoleReplica {
				t, err := backendTarget(cfg, be)
				if err != nil {
					return nil, err
				}
				out = append(out, backup.Source{Role: "replica", Target: t})
			}
		}
	}
	return append(out, backup.Source{Role: "primary", Target: primary}), nil
}

// resolve makes a relative path relative to the config file, so the demo's
// "backups" and "backup.key" sit next to its config wherever it runs from.
func resolve(cfg *config.Config, p string) string {
	if p == "" || filepath.IsAbs(p) || cfg.Path == "" {
		return p
	}
	return filepath.Join(filepath.Dir(cfg.Path), p)
}

// Store opens the backup store (sidecar.backup.dir).
func Store(cfg *config.Config) (*storage.Local, error) {
	return storage.NewLocal(resolve(cfg, cfg.Sidecar.Backup.Dir))
}

// LoadKey reads the backup key from $PGNINJA_BACKUP_KEY or
// sidecar.backup.key_file.
func LoadKey(cfg *config.Config) (*sealed.Key, error) {
	return sealed.LoadKey(os.Getenv(sealed.EnvKey), resolve(cfg, cfg.Sidecar.Backup.KeyFile))
}

var levels = map[string]zstd.EncoderLevel{
	"fastest": zstd.SpeedFastest,
	"default": zstd.SpeedDefault,
	"better":  zstd.SpeedBetterCompression,
	"best":    zstd.SpeedBestCompression,
}

// BackupService wires a backup.Service from the config. A missing key is
// not an error here (listing needs none); operations that need it say so.
// A key that is configured but unreadable or malformed is.
func BackupService(cfg *config.Config, logger *slog.Logger) (*backup.Service, error) {
	store, err := Store(cfg)
	if err != nil {
		return nil, err
	}
	primary, err := PrimaryTarget(cfg)
	if err != nil {
		return nil, err
	}
	sources, err := BackupSources(cfg)
	if err != nil {
		return nil, err
	}
	b := cfg.Sidecar.Backup
	svc := &backup.Service{
		Store: store, Sources: sources, Primary: primary,
		Tools:     pgtool.Tools{Dir: cfg.Sidecar.PgBinDir},
		Level:     levels[b.Compression],
		Retention: backup.Retention{Last: b.KeepLast, Daily: b.KeepDaily, Weekly: b.KeepWeekly},
		Logger:    logger,
	}
	if os.Getenv(sealed.EnvKey) != "" || b.KeyFile != "" {
		if svc.Key, err = LoadKey(cfg); err != nil {
			return nil, err
		}
	}
	return svc, nil
}

// PartitionManager wires a partition.Manager from the config. Archives go
// to the backup store.
func PartitionManager(cfg *config.Config, logger *slog.Logger) (*partition.Manager, error) {
	m := &partition.Manager{Logger: logger, LockTimeout: cfg.Sidecar.LockTimeout}
	archive := false
	for _, t := range cfg.Sidecar.Partitions.Tables {
		m.Specs = append(m.Specs, partition.Spec{
			Table: t.Table, Interval: partition.Interval(t.Interval), Premake: t.Premake,
			Retention: t.Retention, RetentionAction: t.RetentionAction,
			ArchiveBeforeDrop: t.ArchiveBeforeDrop, MoveDefaultRows: t.MoveDefaultRows,
		})
		archive = archive || t.ArchiveBeforeDrop
	}
	if archive {
		store, err := Store(cfg)
		if err != nil {
			return nil, err
		}
		m.Store = store
	}
	return m, nil
}

// PITRTarget is the primary as the replication role of sidecar.pitr.dsn.
func PITRTarget(cfg *config.Config) (pgtool.Target, error) {
	if cfg.Sidecar.PITR.DSN == "" {
		return pgtool.Target{}, errors.New("sidecar.pitr.dsn is not set (a role with REPLICATION on the primary)")
	}
	t, err := pgtool.ParseDSN(cfg.Sidecar.PITR.DSN)
	if err != nil {
		return t, fmt.Errorf("sidecar.pitr.dsn: %w", err)
	}
	return t, nil
}

// WALDir is pg_receivewal's local directory.
func WALDir(cfg *config.Config) string { return resolve(cfg, cfg.Sidecar.PITR.WALDir) }

// Archiver wires the WAL archiver from the config.
func Archiver(cfg *config.Config, logger *slog.Logger, key *sealed.Key, serverMajor int) (*pitr.Archiver, error) {
	src, err := PITRTarget(cfg)
	if err != nil {
		return nil, err
	}
	store, err := Store(cfg)
	if err != nil {
		return nil, err
	}
	return &pitr.Archiver{Store: store, Key: key, Tools: pgtool.Tools{Dir: cfg.Sidecar.PgBinDir}, Source: src,
		Slot: cfg.Sidecar.PITR.Slot, Dir: WALDir(cfg), Logger: logger, ServerMajor: serverMajor}, nil
}
