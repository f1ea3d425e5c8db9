package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"text/tabwriter"
	"time"

	"github.com/ai-ninja/pgninja/sidecar"
	"github.com/ai-ninja/pgninja/sidecar/backup"
	"github.com/ai-ninja/pgninja/sidecar/pgtool"
)

func runBackup(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("backup", flag.ContinueOnError)
	var cf configFlags
	cf.register(fs)
	verify := fs.Bool("verify", false, "run: test-restore the new backup before retention (the scheduled job does unless sidecar.backup.skip_verify)")
	to := fs.String("to", "", "restore: DSN of the database to restore into")
	clean := fs.Bool("clean", false, "restore: allowed to replace a non-empty database's schemas")
	fs.Usage = func() {
		fmt.Fprintln(fs.Output(), `usage: pgninja backup run|list|verify ID|restore ID --to DSN [--clean] [flags]

  run                  take a backup now (then apply retention)
  list                 list backups with size, rows and verification status
  verify ID|latest     restore into a scratch database and compare every table
  restore ID|latest --to DSN [--clean]
                       restore into a database (refuses a non-empty one without --clean)`)
		fs.PrintDefaults()
	}
	var pos []string
	sub, err := parseSubArgs(fs, args, &pos)
	if err != nil {
		return err
	}
	cfg, err := cf.load()
	if err != nil {
		return err
	}
	log := cliLogger()
	svc, err := sidecar.BackupService(cfg, log)
	if err != nil {
		return err
	}
	update, stop := progress(log)
	svc.Progress = update
	defer stop()

	id := ""
	if sub == "verify" || sub == "restore" {
		if len(pos) != 1 {
			fs.Usage()
			return fmt.Errorf("%s needs a backup ID (or latest)", sub)
		}
		if id, err = resolveID(ctx, svc, pos[0]); err != nil {
			return err
		}
	} else if len(pos) > 0 {
		return fmt.Errorf("unexpected arguments: %v", pos)
	}

	switch sub {
	case "run":
		m, err := svc.Run(ctx)
		stop()
		if err != nil {
			return err
		}
		secs := m.FinishedAt.Sub(m.StartedAt).Seconds()
		fmt.Printf("backup %s: %s stored (%s dumped, %.1f MB/s) from %s %s:%d, %d tables, %d rows, lsn %s\n",
			m.ID, humanBytes(m.File.Size), humanBytes(m.DumpBytes), float64(m.DumpBytes)/1e6/max(secs, 0.001),
			m.Source.Role, m.Source.Host, m.Source.Port, len(m.Tables), m.Rows(), m.LSN)
		if *verify {
			rec, err := svc.Verify(ctx, m.ID)
			stop()
			printVerify(rec)
			if err != nil {
				return err
			}
		} else {
			fmt.Printf("verify it with: pgninja backup verify %s\n", m.ID)
		}
		deleted, err := svc.ApplyRetention(ctx)
		for _, d := range deleted {
			fmt.Printf("retention: deleted backup %s\n", d)
		}
		return err
	case "list":
		list, err := svc.List(ctx)
		if err != nil {
			return err
		}
		if len(list) == 0 {
			fmt.Printf("no backups in %s\n", svc.Store)
			return nil
		}
		w := tabwriter.NewWriter(os.Stdout, 0, 4, 2, ' ', 0)
		fmt.Fprintln(w, "ID\tSTARTED\tSOURCE\tSIZE\tTABLES\tROWS\tSTATUS")
		for _, e := range list {
			m := e.Manifest
			fmt.Fprintf(w, "%s\t%s\t%s %s:%d\t%s\t%d\t%d\t%s\n", m.ID, m.StartedAt.Local().Format(time.DateTime),
				m.Source.Role, m.Source.Host, m.Source.Port, humanBytes(m.File.Size), len(m.Tables), m.Rows(), e.Status())
		}
		return w.Flush()
	case "verify":
		rec, err := svc.Verify(ctx, id)
		stop()
		printVerify(rec)
		return err
	case "restore":
		if *to == "" {
			return errors.New("restore needs --to DSN")
		}
		target, err := pgtool.ParseDSN(*to)
		if err != nil {
			return fmt.Errorf("--to: %w", err)
		}
		rec, err := svc.Restore(ctx, id, target, *clean)
		stop()
		if err != nil {
			return err
		}
		var rows int64
		for _, t := range rec.Tables {
			rows += t.Rows
		}
		fmt.Printf("restored backup %s into %s: %d tables, %d rows, counts and checksums match the manifest\n", id, target, len(rec.Tables), rows)
		return nil
	}
	fs.Usage()
	return fmt.Errorf("unknown subcommand %q", sub)
}

func resolveID(ctx context.Context, svc *backup.Service, id string) (string, error) {
	if id != "latest" {
		return id, nil
	}
	list, err := svc.List(ctx)
	if err != nil {
		return "", err
	}
	if len(list) == 0 {
		return "", fmt.Errorf("no backups in %s", svc.Store)
	}
	return list[0].Manifest.ID, nil
}

func printVerify(rec *backup.VerifyRecord) {
	if rec == nil {
		return
	}
	if rec.Status != backup.StatusVerified {
		fmt.Printf("backup %s: %s: %s\n", rec.ID, rec.Status, rec.Error)
		for _, x := range rec.Mismatches {
			fmt.Printf("  %s\n", x)
		}
		return
	}
	w := tabwriter.NewWriter(os.Stdout, 0, 4, 2, ' ', tabwriter.AlignRight)
	var rows int64
	for _, t := range rec.Tables {
		rows += t.Rows
		fmt.Fprintf(w, "  %s\t%d\t\n", t.Table, t.Rows)
	}
	w.Flush()
	fmt.Printf("backup %s verified: restored into a scratch database in %.1fs; %d tables, %d rows; row counts and checksums match the manifest\n",
		rec.ID, rec.Duration, len(rec.Tables), rows)
}
