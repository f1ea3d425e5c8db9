package migrations

import (
	"context"
	"database/sql"
	"embed"
	"io/fs"
	"log/slog"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/stdlib"
	"github.com/pressly/goose/v3"
	"github.com/pressly/goose/v3/lock"

	"github.com/ai-ninja/pgninja/sidecar/pgtool"
)

//go:embed *.sql
var files embed.FS

// FS is the embedded migration files.
func FS() fs.FS { return files }

// Open returns a database/sql handle for goose on the target.
func Open(t pgtool.Target) (*sql.DB, error) {
	cfg, err := pgx.ParseConfig(t.ConnInfo())
	if err != nil {
		return nil, err
	}
	cfg.Password = t.Password
	cfg.RuntimeParams["application_name"] = "pgninja-migrate"
	return stdlib.OpenDB(*cfg), nil
}

// NewProvider returns a goose provider over the embedded files. It uses no
// goose globals (so tests and commands cannot disturb one another) and a
// Postgres advisory session lock (so two instances migrating at once take
// turns instead of both applying a version).
func NewProvider(db *sql.DB, logger *slog.Logger) (*goose.Provider, error) {
	locker, err := lock.NewPostgresSessionLocker()
	if err != nil {
		return nil, err
	}
	opts := []goose.ProviderOption{goose.WithDisableGlobalRegistry(true), goose.WithSessionLocker(locker)}
	if logger != nil {
		opts = append(opts, goose.WithSlog(logger))
	}
	return goose.NewProvider(goose.DialectPostgres, db, files, opts...)
}

// Up applies every pending migration.
func Up(ctx context.Context, t pgtool.Target) error {
	db, err := Open(t)
	if err != nil {
		return err
	}
	defer db.Close()
	p, err := NewProvider(db, nil)
	if err != nil {
		return err
	}
	_, err = p.Up(ctx)
	return err
}
