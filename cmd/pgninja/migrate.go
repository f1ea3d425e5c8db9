package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"strings"
	"time"

	"github.com/schollz/progressbar/v3"
	"golang.org/x/term"

	"github.com/ai-ninja/pgninja/config"
	"github.com/ai-ninja/pgninja/migrations"
	"github.com/ai-ninja/pgninja/sidecar"
	"github.com/ai-ninja/pgninja/sidecar/partition"
	"github.com/ai-ninja/pgninja/sidecar/pgtool"
	"github.com/jackc/pgx/v5"
)

func runMigrate(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("migrate", flag.ContinueOnError)
	var db dbFlags
	db.register(fs)
	fs.Usage = func() {
		fmt.Fprintln(fs.Output(), "usage: pgninja migrate up|down|status [--dsn DSN] [--config FILE]\n\n"+
			"  up      apply every pending migration\n  down    roll back the latest migration\n  status  list migrations and whether they are applied")
		fs.PrintDefaults()
	}
	sub, err := parseSub(fs, args)
	if err != nil {
		return err
	}
	target, _, err := db.target()
	if err != nil {
		return err
	}
	sqlDB, err := migrations.Open(target)
	if err != nil {
		return err
	}
	defer sqlDB.Close()
	p, err := migrations.NewProvider(sqlDB, nil)
	if err != nil {
		return err
	}
	switch sub {
	case "up":
		res, err := p.Up(ctx)
		for _, r := range res {
			fmt.Println(r)
		}
		if err == nil && len(res) == 0 {
			fmt.Println("no pending migrations")
		}
		return err
	case "down":
		r, err := p.Down(ctx)
		if r != nil {
			fmt.Println(r)
		}
		return err
	case "status":
		st, err := p.Status(ctx)
		if err != nil {
			return err
		}
		for _, s := range st {
			at := ""
			if !s.AppliedAt.IsZero() {
				at = s.AppliedAt.Local().Format(time.DateTime)
			}
			fmt.Printf("%-8s %-40s %s\n", s.State, s.Source.Path, at)
		}
		return nil
	}
	fs.Usage()
	return fmt.Errorf("unknown subcommand %q", sub)
}

// parseSub accepts the subcommand before or after the flags
// ("migrate up --dsn X" and "migrate --dsn X up").
func parseSub(fs *flag.FlagSet, args []string) (string, error) {
	return parseSubArgs(fs, args, nil)
}

// parseSubArgs is parseSub that also collects positional arguments after
// the subcommand into pos (flags may come between them).
func parseSubArgs(fs *flag.FlagSet, args []string, pos *[]string) (string, error) {
	var rest []string
	for {
		if err := fs.Parse(args); err != nil {
			return "", err
		}
		if fs.NArg() == 0 {
			break
		}
		rest = append(rest, fs.Arg(0))
		args = fs.Args()[1:]
	}
	if len(rest) == 0 {
		fs.Usage()
		return "", flag.ErrHelp
	}
	if pos != nil {
		*pos = rest[1:]
	} else if len(rest) > 1 {
		return "", fmt.Errorf("unexpected arguments: %s", strings.Join(rest[1:], " "))
	}
	return rest[0], nil
}

// dbFlags are the config flags plus --dsn, for commands that only need a
// database: with --dsn and no config file they run on defaults.
type dbFlags struct {
	configFlags
	dsn string
}

func (d *dbFlags) register(fs *flag.FlagSet) {
	d.configFlags.register(fs)
	fs.StringVar(&d.dsn, "dsn", "", "database to work on (default: sidecar.dsn, or the primary backend with the first user)")
}

func (d *dbFlags) loadConfig() (*config.Config, error) {
	cfg, err := d.configFlags.load()
	if err != nil {
		if d.dsn == "" || d.path != "" || !errors.Is(err, fs.ErrNotExist) {
			return nil, err
		}
		cfg = &config.Config{Sidecar: config.DefaultSidecar()}
	}
	if d.dsn != "" {
		cfg.Sidecar.DSN = d.dsn
	}
	return cfg, nil
}

func (d *dbFlags) target() (pgtool.Target, *config.Config, error) {
	cfg, err := d.loadConfig()
	if err != nil {
		return pgtool.Target{}, nil, err
	}
	t, err := sidecar.PrimaryTarget(cfg)
	return t, cfg, err
}

// maintenance is what the partition-aware commands share: the primary and
// its config, a logger, the partition manager and an open connection.
type maintenance struct {
	target pgtool.Target
	cfg    *config.Config
	log    *slog.Logger
	pm     *partition.Manager
	conn   *pgx.Conn
}

func (d *dbFlags) openMaintenance(ctx context.Context) (*maintenance, error) {
	target, cfg, err := d.target()
	if err != nil {
		return nil, err
	}
	log := cliLogger()
	pm, err := sidecar.PartitionManager(cfg, log)
	if err != nil {
		return nil, err
	}
	conn, err := pgtool.Connect(ctx, target)
	if err != nil {
		return nil, err
	}
	return &maintenance{target: target, cfg: cfg, log: log, pm: pm, conn: conn}, nil
}

func (m *maintenance) close(ctx context.Context) { m.conn.Close(context.WithoutCancel(ctx)) }

// cliLogger logs to stderr for the maintenance commands.
func cliLogger() *slog.Logger {
	return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelInfo}))
}

func isTerminal() bool { return term.IsTerminal(int(os.Stderr.Fd())) }

// progress shows streamed bytes: a progress bar (bytes and rate) on a
// terminal, a log line every few seconds otherwise. The returned stop
// finishes the display.
func progress(log *slog.Logger) (update func(stage string, n int64), stop func()) {
	var bar *progressbar.ProgressBar
	var cur string
	var last time.Time
	start := time.Now()
	finish := func() {
		if bar != nil {
			bar.Finish()
			fmt.Fprintln(os.Stderr)
			bar = nil
		}
	}
	update = func(stage string, n int64) {
		if stage != cur {
			finish()
			cur, start = stage, time.Now()
			if isTerminal() {
				bar = progressbar.NewOptions64(-1, progressbar.OptionSetWriter(os.Stderr),
					progressbar.OptionSetDescription(stage), progressbar.OptionShowBytes(true),
					progressbar.OptionShowCount(), progressbar.OptionThrottle(100*time.Millisecond),
					progressbar.OptionSpinnerType(14), progressbar.OptionSetElapsedTime(true))
			}
		}
		if bar != nil {
			bar.Set64(n)
			return
		}
		if time.Since(last) >= 5*time.Second {
			last = time.Now()
			secs := time.Since(start).Seconds()
			log.Info("progress", "stage", stage, "bytes", n, "MB/s", fmt.Sprintf("%.1f", float64(n)/1e6/max(secs, 0.001)))
		}
	}
	return update, finish
}
