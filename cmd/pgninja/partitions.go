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
	"github.com/ai-ninja/pgninja/sidecar/partition"
)

func runPartitions(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("partitions", flag.ContinueOnError)
	var db dbFlags
	db.register(fs)
	dry := fs.Bool("dry-run", false, "run: print what would change, change nothing")
	move := fs.Bool("move-default", false, "run: move rows out of DEFAULT partitions into proper ones")
	into := fs.String("into", "", "restore-archive: table to load the rows into (created like the parent if missing)")
	fs.Usage = func() {
		fmt.Fprintln(fs.Output(), `usage: pgninja partitions status|run|archives|restore-archive [flags]

  status                      partitions, sizes, future months, DEFAULT rows, problems
  run [--dry-run] [--move-default]
                              create future partitions, apply retention (as configured)
  archives                    list partitions archived before they were dropped
  restore-archive NAME --into TABLE
                              verify an archive and load its rows into TABLE`)
		fs.PrintDefaults()
	}
	var pos []string
	sub, err := parseSubArgs(fs, args, &pos)
	if err != nil {
		return err
	}
	m, err := db.openMaintenance(ctx)
	if err != nil {
		return err
	}
	defer m.close(ctx)
	cfg, pm, conn := m.cfg, m.pm, m.conn

	switch sub {
	case "status":
		st, err := pm.Status(ctx, conn)
		if err != nil {
			return err
		}
		printStatus(st, pm.Now)
		return nil
	case "run":
		res, err := pm.Run(ctx, conn, partition.RunOptions{DryRun: *dry, MoveDefault: *move})
		if res != nil {
			verb := "done"
			if !res.Applied {
				verb = "would do"
			}
			if len(res.Actions) == 0 {
				fmt.Println("nothing to do")
			}
			for _, a := range res.Actions {
				fmt.Printf("%s: %s\n", verb, a)
			}
			for _, p := range res.Problems {
				fmt.Printf("problem: %s\n", p)
			}
		}
		return err
	case "archives":
		store, err := sidecar.Store(cfg)
		if err != nil {
			return err
		}
		list, err := partition.ListArchives(ctx, store)
		if err != nil {
			return err
		}
		w := tabwriter.NewWriter(os.Stdout, 0, 4, 2, ' ', 0)
		fmt.Fprintln(w, "ARCHIVE\tFROM\tTO\tROWS\tBYTES\tARCHIVED")
		for _, name := range list {
			m, err := partition.ReadArchiveMeta(ctx, store, name)
			if err != nil {
				fmt.Fprintf(w, "%s\t(unreadable: %v)\n", name, err)
				continue
			}
			fmt.Fprintf(w, "%s\t%s\t%s\t%d\t%d\t%s\n", name, m.From.Format(time.DateOnly), m.To.Format(time.DateOnly),
				m.Rows, m.Bytes, m.CreatedAt.Local().Format(time.DateTime))
		}
		return w.Flush()
	case "restore-archive":
		if len(pos) != 1 || *into == "" {
			fs.Usage()
			return errors.New("restore-archive needs an archive name and --into TABLE")
		}
		store, err := sidecar.Store(cfg)
		if err != nil {
			return err
		}
		n, err := partition.RestoreArchive(ctx, conn, store, pos[0], *into)
		if err != nil {
			return err
		}
		fmt.Printf("restored %d rows into %s (archive checksum and row count verified)\n", n, *into)
		return nil
	}
	fs.Usage()
	return fmt.Errorf("unknown subcommand %q", sub)
}

func printStatus(st []partition.TableStatus, now func() time.Time) {
	w := tabwriter.NewWriter(os.Stdout, 0, 4, 2, ' ', 0)
	for i, t := range st {
		if i > 0 {
			fmt.Fprintln(w)
		}
		ret := "keep all"
		if t.Spec.Retention > 0 {
			ret = fmt.Sprintf("%s after %d", t.Spec.RetentionAction, t.Spec.Retention)
			if t.Spec.ArchiveBeforeDrop {
				ret += " (archived first)"
			}
		}
		fmt.Fprintf(w, "%s\tby %s\tper %s, premake %d, retention %s\n", t.Spec.Table, t.KeyColumn, t.Spec.Interval, t.Spec.Premake, ret)
		fmt.Fprintln(w, "  PARTITION\tFROM\tTO\tROWS (est.)\tSIZE")
		for _, p := range t.Partitions {
			from, to := "?", "?"
			if p.Bounded {
				from, to = p.From.Format(time.DateOnly), p.To.Format(time.DateOnly)
			}
			fmt.Fprintf(w, "  %s\t%s\t%s\t%d\t%s\n", p.Name, from, to, p.Rows, humanBytes(p.Bytes))
		}
		if t.Default != nil {
			fmt.Fprintf(w, "  %s\tDEFAULT\t\t%d\t%s\n", t.Default.Name, t.Default.Rows, humanBytes(t.Default.Bytes))
		}
		fmt.Fprintf(w, "  future partitions: %d (want %d)\ttotal %s\n", t.Future, t.Spec.Premake, humanBytes(t.Bytes))
		if len(t.Problems) == 0 {
			fmt.Fprintln(w, "  healthy")
		}
		for _, p := range t.Problems {
			fmt.Fprintf(w, "  problem: %s\n", p)
		}
	}
	w.Flush()
}

func humanBytes(n int64) string {
	const unit = 1024
	if n < unit {
		return fmt.Sprintf("%d B", n)
	}
	div, exp := int64(unit), 0
	for m := n / unit; m >= unit; m /= unit {
		div *= unit
		exp++
	}
	return fmt.Sprintf("%.1f %ciB", float64(n)/float64(div), "KMGTPE"[exp])
}
