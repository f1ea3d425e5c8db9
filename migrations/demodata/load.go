package demodata

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/ai-ninja/pgninja/sidecar/partition"
)

// Options sizes the data set.
type Options struct {
	// Rows is the number of call_records wanted in total.
	Rows int64
	// Months of history, ending now.
	Months int
	// Now is the end of the history; zero means time.Now.
	Now time.Time
	// Partitions creates the monthly partitions the rows go into; nil
	// leaves everything to the DEFAULT partitions.
	Partitions *partition.Manager
	// Progress, when set, is told about each finished step.
	Progress func(step string, done, total int)
}

// Summary is what the database holds afterwards.
type Summary struct {
	Inserted int64            // call_records added by this run
	Tables   map[string]int64 // rows per table afterwards
	Took     time.Duration
}

// Load inserts the sample data through conn.
func Load(ctx context.Context, conn *pgx.Conn, o Options) (*Summary, error) {
	began := time.Now()
	if o.Rows <= 0 {
		return nil, fmt.Errorf("rows must be > 0")
	}
	if o.Months <= 0 {
		o.Months = 12
	}
	if o.Now.IsZero() {
		o.Now = time.Now()
	}
	o.Now = o.Now.UTC()
	from := o.Now.AddDate(0, -o.Months, 0)
	progress := func(step string, done, total int) {
		if o.Progress != nil {
			o.Progress(step, done, total)
		}
	}
	nUsers := max(100, o.Rows/100)
	nSpam := max(50, o.Rows/200)

	if o.Partitions != nil {
		for _, t := range []string{"call_records", "conversations"} {
			// A table the config does not manage keeps its rows in DEFAULT.
			if _, err := o.Partitions.EnsureRange(ctx, conn, t, from, o.Now); err != nil && !errors.Is(err, partition.ErrNotManaged) {
				return nil, fmt.Errorf("partitions for %s: %w", t, err)
			}
		}
		if _, err := o.Partitions.Run(ctx, conn, partition.RunOptions{SkipRetention: true}); err != nil {
			return nil, fmt.Errorf("future partitions: %w", err)
		}
		progress("partitions", 1, 1)
	}

	ref := []struct {
		step string
		sql  string
		args []any
	}{
		{"users", usersSQL, []any{nUsers}},
		{"spam_profiles", spamSQL, []any{nSpam, o.Now}},
		{"demo keys", demoKeysSQL, nil},
		{"smart_whitelists", whitelistsSQL, []any{o.Now}},
		{"user_spam_interactions", interactionsSQL, []any{o.Now, nSpam}},
		{"user_configs", configsSQL, nil},
	}
	for i, r := range ref {
		if _, err := conn.Exec(ctx, r.sql, r.args...); err != nil {
			return nil, fmt.Errorf("%s: %w", r.step, err)
		}
		progress(r.step, i+1, len(ref))
	}

	var have int64
	if err := conn.QueryRow(ctx, "SELECT count(*) FROM call_records").Scan(&have); err != nil {
		return nil, err
	}
	sum := &Summary{Tables: map[string]int64{}}
	if want := o.Rows - have; want > 0 {
		// One statement per month-sized slice: each mostly fills one
		// partition, and calls and their conversations commit together.
		slices := o.Months
		span := o.Now.Sub(from) / time.Duration(slices)
		for i := 0; i < slices; i++ {
			lo := from.Add(time.Duration(i) * span)
			hi := lo.Add(span)
			n := want / int64(slices)
			if i == slices-1 {
				n = want - n*int64(slices-1)
				hi = o.Now
			}
			if _, err := conn.Exec(ctx, callsSQL, n, lo, hi, nUsers, nSpam, have+int64(i)*n); err != nil {
				return nil, fmt.Errorf("call_records %s..%s: %w", lo.Format(time.DateOnly), hi.Format(time.DateOnly), err)
			}
			sum.Inserted += n
			progress("call_records", i+1, slices)
		}
	}

	for _, s := range []string{"ANALYZE", "SELECT count(*) FROM refresh_dashboard_stats()"} {
		if _, err := conn.Exec(ctx, s); err != nil {
			return nil, fmt.Errorf("%s: %w", s, err)
		}
	}
	progress("statistics", 1, 1)
	for _, t := range []string{"users", "smart_whitelists", "spam_profiles", "user_spam_interactions", "user_configs", "call_records", "conversations"} {
		var n int64
		if err := conn.QueryRow(ctx, "SELECT count(*) FROM "+t).Scan(&n); err != nil {
			return nil, err
		}
		sum.Tables[t] = n
	}
	sum.Took = time.Since(began)
	return sum, nil
}
