// Command idleclients opens N authenticated connections to a PostgreSQL
// endpoint and holds them idle, for the memory row of `make bench`.
//
// It connects with pgconn (startup, authentication, up to the first
// ReadyForQuery), then prints "ready N SECONDS" on stdout and sends nothing
// more until it gets SIGINT/SIGTERM (or -hold passes, a safety net for a
// harness that died); then it closes the connections and exits 0. If not all N connect within -timeout it prints
// "error: ..." on stdout and exits 1.
//
//	idleclients -dsn 'host=127.0.0.1 port=27440 user=postgres dbname=bench sslmode=disable' -n 10000
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/jackc/pgx/v5/pgconn"
)

func main() {
	dsn := flag.String("dsn", "", "libpq-style connection string (required)")
	n := flag.Int("n", 10000, "number of connections to open")
	workers := flag.Int("workers", 32, "connections opened concurrently")
	timeout := flag.Duration("timeout", 3*time.Minute, "time allowed to open all connections")
	hold := flag.Duration("hold", 10*time.Minute, "give up holding after this long")
	flag.Parse()
	if *dsn == "" || *n <= 0 || *workers <= 0 {
		flag.Usage()
		os.Exit(2)
	}
	cfg, err := pgconn.ParseConfig(*dsn)
	if err != nil {
		fmt.Printf("error: %v\n", err)
		os.Exit(2)
	}
	cfg.ConnectTimeout = 30 * time.Second

	ctx, cancel := context.WithTimeout(context.Background(), *timeout)
	defer cancel()
	conns := make([]*pgconn.PgConn, *n)
	var next, failed atomic.Int64
	var firstErr atomic.Pointer[error]
	var wg sync.WaitGroup
	start := time.Now()
	for w := 0; w < *workers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := int(next.Add(1)) - 1
				if i >= *n || ctx.Err() != nil {
					return
				}
				c, err := pgconn.ConnectConfig(ctx, cfg)
				if err != nil {
					failed.Add(1)
					firstErr.CompareAndSwap(nil, &err)
					continue
				}
				conns[i] = c
			}
		}()
	}
	wg.Wait()
	up := 0
	for _, c := range conns {
		if c != nil {
			up++
		}
	}
	if up != *n {
		msg := "timed out"
		if e := firstErr.Load(); e != nil {
			msg = (*e).Error()
		}
		fmt.Printf("error: %d of %d connected (%d failed): %s\n", up, *n, failed.Load(), msg)
		closeAll(conns)
		os.Exit(1)
	}
	fmt.Printf("ready %d %.1fs\n", up, time.Since(start).Seconds())

	stop := make(chan os.Signal, 1)
	signal.Notify(stop, syscall.SIGINT, syscall.SIGTERM)
	select {
	case <-stop:
	case <-time.After(*hold):
	}
	closeAll(conns)
}

func closeAll(conns []*pgconn.PgConn) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	var wg sync.WaitGroup
	sem := make(chan struct{}, 64)
	for _, c := range conns {
		if c == nil {
			continue
		}
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer func() { <-sem; wg.Done() }()
			_ = c.Close(ctx)
		}()
	}
	wg.Wait()
}
