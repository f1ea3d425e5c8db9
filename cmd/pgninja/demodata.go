package main

import (
	"context"
	"flag"
	"fmt"
	"sort"

	"github.com/ai-ninja/pgninja/migrations/demodata"
)

func runDemoData(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("demo-data", flag.ContinueOnError)
	var db dbFlags
	db.register(fs)
	rows := fs.Int64("rows", 1_000_000, "call_records wanted in total (conversations, users etc. scale with it)")
	months := fs.Int("months", 12, "months of history, ending now")
	if err := fs.Parse(args); err != nil {
		return err
	}
	m, err := db.openMaintenance(ctx)
	if err != nil {
		return err
	}
	defer m.close(ctx)
	target, log, pm, conn := m.target, m.log, m.pm, m.conn
	fmt.Printf("loading demo data into %s: %d call records over %d months\n", target, *rows, *months)
	sum, err := demodata.Load(ctx, conn, demodata.Options{
		Rows: *rows, Months: *months, Partitions: pm,
		Progress: func(step string, done, total int) {
			log.Info("demo-data", "step", step, "done", fmt.Sprintf("%d/%d", done, total))
		},
	})
	if err != nil {
		return err
	}
	names := make([]string, 0, len(sum.Tables))
	for n := range sum.Tables {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		fmt.Printf("  %-24s %10d rows\n", n, sum.Tables[n])
	}
	fmt.Printf("added %d call records in %s\n", sum.Inserted, sum.Took.Round(100_000_000))
	return nil
}
