package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"text/tabwriter"
	"time"

	"github.com/ai-ninja/pgninja/sidecar"
	"github.com/ai-ninja/pgninja/sidecar/pgtool"
	"github.com/ai-ninja/pgninja/sidecar/pitr"
)

// runRestore prepares a point-in-time recovery: a data directory that
// recovers to --target-time when PostgreSQL starts on it.
func runRestore(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("restore", flag.ContinueOnError)
	var cf configFlags
	cf.register(fs)
	target := fs.String("target-time", "", "recover to this time (RFC 3339, or \"2006-01-02 15:04:05\" local time)")
	dir := fs.String("to-dir", "", "new data directory to create (must be empty or absent)")
	fs.Usage = func() {
		fmt.Fprintln(fs.Output(), "usage: pgninja restore --target-time T --to-dir DIR [--config FILE]\n\n"+
			"Lays out DIR from the newest base backup before T plus the archived WAL, with\n"+
			"recovery_target_time = T; start PostgreSQL on DIR and it recovers to T, then promotes.\n"+
			"(Logical restores are `pgninja backup restore`.)")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *target == "" || *dir == "" || fs.NArg() > 0 {
		fs.Usage()
		return flag.ErrHelp
	}
	t, err := parseTime(*target)
	if err != nil {
		return err
	}
	cfg, err := cf.load()
	if err != nil {
		return err
	}
	key, err := sidecar.LoadKey(cfg)
	if err != nil {
		return err
	}
	store, err := sidecar.Store(cfg)
	if err != nil {
		return err
	}
	plan, err := pitr.PrepareRestore(ctx, store, key, t, *dir, sidecar.WALDir(cfg))
	if err != nil {
		return err
	}
	fmt.Printf("prepared %s: base backup %s (finished %s, start lsn %s) + %d WAL files, recovering to %s\n",
		plan.Dir, plan.Base.ID, plan.Base.FinishedAt.Local().Format(time.DateTime), plan.Base.StartLSN, plan.Segments,
		plan.TargetTime.Local().Format(time.RFC3339))
	fmt.Printf("start it (as the postgres user, on a free port): pg_ctl -D %s -o '-p 5499' start\n", plan.Dir)
	return nil
}

func parseTime(s string) (time.Time, error) {
	if t, err := time.Parse(time.RFC3339Nano, s); err == nil {
		return t, nil
	}
	for _, l := range []string{time.DateTime, "2006-01-02 15:04", time.DateOnly} {
		if t, err := time.ParseInLocation(l, s, time.Local); err == nil {
			return t, nil
		}
	}
	return time.Time{}, fmt.Errorf("--target-time %q: want RFC 3339 (2025-01-02T15:04:05Z) or \"2025-01-02 15:04:05\"", s)
}

// runPITR takes base backups, lists them, or runs the WAL archiver in the
// foreground (what `serve` does when sidecar.pitr.enabled).
func runPITR(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("pitr", flag.ContinueOnError)
	var cf configFlags
	cf.register(fs)
	fs.Usage = func() {
		fmt.Fprintln(fs.Output(), "usage: pgninja pitr base|list|archive [--config FILE]\n\n"+
			"  base     take a base backup now (pg_basebackup, sealed into the backup store)\n"+
			"  list     base backups and archived WAL\n"+
			"  archive  run the WAL archiver (pg_receivewal on a slot) until interrupted")
		fs.PrintDefaults()
	}
	sub, err := parseSub(fs, args)
	if err != nil {
		return err
	}
	cfg, err := cf.load()
	if err != nil {
		return err
	}
	store, err := sidecar.Store(cfg)
	if err != nil {
		return err
	}
	log := cliLogger()
	switch sub {
	case "list":
		bases, err := pitr.ListBases(ctx, store)
		if err != nil {
			return err
		}
		wal, err := pitr.ArchivedWAL(ctx, store)
		if err != nil {
			return err
		}
		w := tabwriter.NewWriter(os.Stdout, 0, 4, 2, ' ', 0)
		fmt.Fprintln(w, "BASE\tFINISHED\tSTART LSN\tSIZE")
		for _, b := range bases {
			fmt.Fprintf(w, "%s\t%s\t%s\t%s\n", b.ID, b.FinishedAt.Local().Format(time.DateTime), b.StartLSN, humanBytes(b.Size))
		}
		w.Flush()
		if len(wal) > 0 {
			fmt.Printf("archived WAL: %d files, %s .. %s\n", len(wal), wal[0], wal[len(wal)-1])
		} else {
			fmt.Println("archived WAL: none")
		}
		return nil
	case "base", "archive":
		key, err := sidecar.LoadKey(cfg)
		if err != nil {
			return err
		}
		src, err := sidecar.PITRTarget(cfg)
		if err != nil {
			return err
		}
		major := 0
		if primary, err := sidecar.PrimaryTarget(cfg); err == nil {
			if c, err := pgtool.Connect(ctx, primary); err == nil {
				major = pgtool.ServerMajor(c)
				c.Close(ctx)
			}
		}
		if sub == "archive" {
			a, err := sidecar.Archiver(cfg, log, key, major)
			if err != nil {
				return err
			}
			return a.Run(ctx)
		}
		m, err := pitr.TakeBase(ctx, store, key, pgtool.Tools{Dir: cfg.Sidecar.PgBinDir}, src, major, time.Now())
		if err != nil {
			return err
		}
		fmt.Printf("base backup %s: %s, start lsn %s on timeline %d\n", m.ID, humanBytes(m.Size), m.StartLSN, m.Timeline)
		bases, segs, err := pitr.Prune(ctx, store, cfg.Sidecar.PITR.KeepBase)
		if bases+segs > 0 {
			fmt.Printf("retention: deleted %d base backups and %d WAL files\n", bases, segs)
		}
		return err
	}
	fs.Usage()
	return fmt.Errorf("unknown subcommand %q", sub)
}
