// Command chaos runs a checking load through a PostgreSQL endpoint while
// it terminates server backends, for `make chaos` (bench/chaos.sh, which
// also restarts the servers under it).
//
// Each client loops over three requests: an INSERT ... RETURNING followed
// by a read of that row (read-your-writes, which routing must not break),
// a computed SELECT whose answer is known, and an INSERT inside an explicit
// transaction. Every id whose INSERT was acknowledged as committed is
// checked afterwards directly on the primary. Errors are counted by
// SQLSTATE; an error without one means the endpoint dropped a client
// without telling it why.
//
// It prints a summary and exits 1 when an answer was wrong, a client's own
// write was missing from its next read, an acknowledged commit was lost,
// an error had no SQLSTATE, or nothing succeeded.
//
//	chaos -proxy 'host=127.0.0.1 port=28440 user=postgres dbname=bench' \
//	      -direct 'host=127.0.0.1 port=28432 user=postgres dbname=bench' -duration 60s
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
)

type tally struct {
	ok, wrong, rywMiss atomic.Int64

	mu        sync.Mutex
	committed []int64
	errs      map[string]int
	bare      map[string]int // errors without a SQLSTATE
}

func (t *tally) fail(err error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if pe, ok := errors.AsType[*pgconn.PgError](err); ok {
		t.errs[pe.Code+" "+pe.Message]++
		return
	}
	msg := err.Error()
	if len(msg) > 100 {
		msg = msg[:100]
	}
	t.bare[msg]++
}

func (t *tally) commit(id int64) {
	t.mu.Lock()
	t.committed = append(t.committed, id)
	t.mu.Unlock()
}

func main() {
	proxy := flag.String("proxy", "", "connection string of the endpoint under test (required)")
	direct := flag.String("direct", "", "connection string of the primary itself (required)")
	duration := flag.Duration("duration", time.Minute, "how long the load runs")
	clients := flag.Int("clients", 40, "concurrent clients")
	killEvery := flag.Duration("kill-every", 300*time.Millisecond, "terminate one client backend this often (0: never)")
	flag.Parse()
	if *proxy == "" || *direct == "" || *clients <= 0 {
		flag.Usage()
		os.Exit(2)
	}
	ctx := context.Background()
	admin, err := pgx.Connect(ctx, *direct)
	if err != nil {
		fmt.Println("error:", err)
		os.Exit(1)
	}
	if _, err := admin.Exec(ctx, "drop table if exists pgninja_chaos; create table pgninja_chaos (id bigserial primary key, client int, n int)"); err != nil {
		fmt.Println("error:", err)
		os.Exit(1)
	}
	admin.Close(ctx)

	t := &tally{errs: map[string]int{}, bare: map[string]int{}}
	stop := time.Now().Add(*duration)
	var wg sync.WaitGroup
	for i := range *clients {
		wg.Go(func() { client(ctx, *proxy, i, stop, t) })
	}
	kills := killer(ctx, *direct, *killEvery, stop)
	wg.Wait()

	missing, err := lost(ctx, *direct, t.committed)
	if err != nil {
		fmt.Println("error: checking the commits:", err)
		os.Exit(1)
	}
	fmt.Printf("ok %d, wrong answers %d, own writes not read back %d, commits acknowledged %d, lost %d, backends terminated %d\n",
		t.ok.Load(), t.wrong.Load(), t.rywMiss.Load(), len(t.committed), missing, kills)
	report := func(title string, m map[string]int) {
		keys := make([]string, 0, len(m))
		for k := range m {
			keys = append(keys, k)
		}
		slices.Sort(keys)
		for _, k := range keys {
			fmt.Printf("  %s %6d  %s\n", title, m[k], k)
		}
	}
	report("error", t.errs)
	report("NO SQLSTATE", t.bare)
	if t.wrong.Load() > 0 || t.rywMiss.Load() > 0 || missing > 0 || len(t.bare) > 0 || t.ok.Load() == 0 {
		fmt.Println("FAIL")
		os.Exit(1)
	}
	fmt.Println("PASS")
}

// client runs the checking loop until stop, connecting again whenever its
// connection is gone.
func client(ctx context.Context, dsn string, id int, stop time.Time, t *tally) {
	var c *pgx.Conn
	defer func() {
		if c != nil {
			c.Close(ctx)
		}
	}()
	for n := 0; time.Now().Before(stop); n++ {
		if c == nil || c.IsClosed() {
			var err error
			if c, err = pgx.Connect(ctx, dsn); err != nil {
				t.fail(err)
				c = nil
				time.Sleep(50 * time.Millisecond)
				continue
			}
		}
		rctx, cancel := context.WithTimeout(ctx, 15*time.Second)
		if err := step(rctx, c, id, n, t); err != nil {
			t.fail(err)
		}
		cancel()
	}
}

func step(ctx context.Context, c *pgx.Conn, id, n int, t *tally) error {
	switch n % 3 {
	case 0:
		var row int64
		if err := c.QueryRow(ctx, "insert into pgninja_chaos (client, n) values ($1, $2) returning id", id, n).Scan(&row); err != nil {
			return err
		}
		t.commit(row)
		var got int
		err := c.QueryRow(ctx, "select n from pgninja_chaos where id = $1", row).Scan(&got)
		switch {
		case errors.Is(err, pgx.ErrNoRows):
			t.rywMiss.Add(1)
			return nil
		case err != nil:
			return err
		case got != n:
			t.wrong.Add(1)
			return nil
		}
	case 1:
		var got int
		if err := c.QueryRow(ctx, "select $1::int * 2 + 1", n).Scan(&got); err != nil {
			return err
		}
		if got != n*2+1 {
			t.wrong.Add(1)
			return nil
		}
	case 2:
		tx, err := c.Begin(ctx)
		if err != nil {
			return err
		}
		var row int64
		if err := tx.QueryRow(ctx, "insert into pgninja_chaos (client, n) values ($1, $2) returning id", id, -n).Scan(&row); err != nil {
			_ = tx.Rollback(ctx)
			return err
		}
		if err := tx.Commit(ctx); err != nil {
			return err
		}
		t.commit(row)
	}
	t.ok.Add(1)
	return nil
}

// killer terminates a random client backend on the primary every period
// until stop, reconnecting when the primary restarts under it.
func killer(ctx context.Context, dsn string, period time.Duration, stop time.Time) int {
	kills := 0
	if period <= 0 {
		time.Sleep(time.Until(stop))
		return 0
	}
	var c *pgx.Conn
	for time.Now().Before(stop) {
		time.Sleep(period)
		if c == nil || c.IsClosed() {
			var err error
			if c, err = pgx.Connect(ctx, dsn); err != nil {
				c = nil
				continue
			}
		}
		var terminated bool
		err := c.QueryRow(ctx, `select pg_terminate_backend(pid) from pg_stat_activity
			where backend_type = 'client backend' and pid <> pg_backend_pid()
			  and datname = current_database() and application_name not like 'pgninja%'
			order by random() limit 1`).Scan(&terminated)
		if err == nil && terminated {
			kills++
		}
	}
	if c != nil {
		c.Close(ctx)
	}
	return kills
}

// lost counts the acknowledged commits missing from the primary.
func lost(ctx context.Context, dsn string, ids []int64) (int, error) {
	c, err := pgx.Connect(ctx, dsn)
	if err != nil {
		return 0, err
	}
	defer c.Close(ctx)
	var found int
	err = c.QueryRow(ctx, "select count(*) from pgninja_chaos where id = any($1)", ids).Scan(&found)
	return len(ids) - found, err
}
