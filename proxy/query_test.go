package proxy_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
)

func TestQueryModes(t *testing.T) {
	forEachMode(t, func(t *testing.T, h *harness) {
		conn := h.ninja(t)
		modes := []pgx.QueryExecMode{
			pgx.QueryExecModeCacheStatement, pgx.QueryExecModeCacheDescribe,
			pgx.QueryExecModeDescribeExec, pgx.QueryExecModeExec, pgx.QueryExecModeSimpleProtocol,
		}
		for _, mode := range modes {
			t.Run(mode.String(), func(t *testing.T) {
				for i := 0; i < 20; i++ {
					var n int
					var s string
					err := conn.QueryRow(ctxT(t, 5*time.Second), "select $1::int * 2, $2::text || 'x'", mode, i, "ab'c").Scan(&n, &s)
					if err != nil {
						t.Fatal(err)
					}
					if n != 2*i || s != "ab'cx" {
						t.Fatalf("got %d %q", n, s)
					}
				}
			})
		}
	})
}

func TestPreparedAndPipelined(t *testing.T) {
	forEachMode(t, func(t *testing.T, h *harness) {
		conn := h.ninja(t)
		ctx := ctxT(t, 10*time.Second)
		if _, err := conn.Prepare(ctx, "sq", "select $1::int + 1"); err != nil {
			t.Fatal(err)
		}
		var n int
		if err := conn.QueryRow(ctx, "sq", 41).Scan(&n); err != nil || n != 42 {
			t.Fatalf("prepared: %d %v", n, err)
		}
		// A batch goes out as one pipeline of Parse/Bind/Execute ending in Sync.
		b := &pgx.Batch{}
		for i := 0; i < 100; i++ {
			b.Queue("select $1::int", i)
		}
		br := conn.SendBatch(ctx, b)
		for i := 0; i < 100; i++ {
			var got int
			if err := br.QueryRow().Scan(&got); err != nil || got != i {
				t.Fatalf("batch %d: %d %v", i, got, err)
			}
		}
		if err := br.Close(); err != nil {
			t.Fatal(err)
		}
		// Several Syncs in flight at once, through pgconn's pipeline mode.
		p := conn.PgConn().StartPipeline(ctx)
		for i := 0; i < 10; i++ {
			p.SendQueryParams("select $1::text", [][]byte{[]byte(fmt.Sprint(i))}, nil, nil, nil)
			if err := p.Sync(); err != nil {
				t.Fatal(err)
			}
		}
		for i := 0; i < 10; i++ {
			res, err := p.GetResults()
			if err != nil {
				t.Fatal(err)
			}
			rr := res.(*pgconn.ResultReader).Read()
			if rr.Err != nil || string(rr.Rows[0][0]) != fmt.Sprint(i) {
				t.Fatalf("pipeline %d: %v %q", i, rr.Err, rr.Rows)
			}
			if _, err := p.GetResults(); err != nil { // the Sync's ReadyForQuery
				t.Fatal(err)
			}
		}
		if err := p.Close(); err != nil {
			t.Fatal(err)
		}
	})
}

func TestErrorKeepsAllFields(t *testing.T) {
	forEachMode(t, func(t *testing.T, h *harness) {
		conn := h.ninja(t)
		ctx := ctxT(t, 5*time.Second)
		_, err := conn.Exec(ctx, `DO $$ BEGIN RAISE EXCEPTION 'boom' USING ERRCODE = '22012', DETAIL = 'the detail', HINT = 'the hint'; END $$`)
		var pe *pgconn.PgError
		if !errors.As(err, &pe) {
			t.Fatalf("want PgError, got %v", err)
		}
		if pe.Code != "22012" || pe.Message != "boom" || pe.Detail != "the detail" || pe.Hint != "the hint" {
			t.Fatalf("fields lost: %+v", pe)
		}
		_, err = conn.Exec(ctx, "select nosuchcolumn from pg_class")
		if !errors.As(err, &pe) || pe.Code != "42703" || pe.Position != 8 {
			t.Fatalf("position lost: %+v", pe)
		}
		// The session is still usable after errors.
		var one int
		if err := conn.QueryRow(ctx, "select 1").Scan(&one); err != nil || one != 1 {
			t.Fatal(err)
		}
	})
}

func TestCopyAndLargeRows(t *testing.T) {
	forEachMode(t, func(t *testing.T, h *harness) {
		conn := h.ninja(t)
		ctx := ctxT(t, 60*time.Second)
		if _, err := conn.Exec(ctx, "create temp table big (id int, payload text)"); err != nil {
			t.Fatal(err)
		}
		// COPY FROM STDIN of about 10 MB of text.
		var in bytes.Buffer
		line := strings.Repeat("x", 1000)
		for i := 0; in.Len() < 10<<20; i++ {
			fmt.Fprintf(&in, "%d\t%s\n", i, line)
		}
		rows := int64(strings.Count(in.String(), "\n"))
		tag, err := conn.PgConn().CopyFrom(ctx, bytes.NewReader(in.Bytes()), "copy big from stdin")
		if err != nil || tag.RowsAffected() != rows {
			t.Fatalf("copy in: %v %v (want %d rows)", tag, err, rows)
		}
		// COPY TO STDOUT returns the same bytes.
		var out bytes.Buffer
		if _, err := conn.PgConn().CopyTo(ctx, &out, "copy (select * from big order by id) to stdout"); err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(out.Bytes(), in.Bytes()) {
			t.Fatalf("copy out differs: %d vs %d bytes", out.Len(), in.Len())
		}
		// pgx's binary CopyFrom.
		src := make([][]any, 1000)
		for i := range src {
			src[i] = []any{int32(i), "row"}
		}
		if n, err := conn.CopyFrom(ctx, pgx.Identifier{"big"}, []string{"id", "payload"}, pgx.CopyFromRows(src)); err != nil || n != 1000 {
			t.Fatalf("binary copy: %d %v", n, err)
		}
		// A failed COPY leaves the session usable.
		if _, err := conn.PgConn().CopyFrom(ctx, strings.NewReader("notanumber\tx\n"), "copy big from stdin"); err == nil {
			t.Fatal("bad copy data accepted")
		}
		// A 2 MB row both ways: as a parameter and as a result.
		big := strings.Repeat("0123456789abcdef", 2<<20/16)
		var got string
		if err := conn.QueryRow(ctx, "select $1::text", big).Scan(&got); err != nil || got != big {
			t.Fatalf("2MB round trip: %v (len %d)", err, len(got))
		}
		if err := conn.QueryRow(ctx, "select repeat('z', 2*1024*1024)", pgx.QueryExecModeSimpleProtocol).Scan(&got); err != nil || len(got) != 2<<20 {
			t.Fatalf("2MB simple result: %v (len %d)", err, len(got))
		}
	})
}

func TestConcurrentClients(t *testing.T) {
	h := startProxy(t, "pool:\n  max_size: 210\n")
	const clients = 200
	var wg sync.WaitGroup
	errs := make(chan error, clients)
	for i := 0; i < clients; i++ {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			// Generous: 200 SCRAM logins on a shared 2-core box, maybe
			// under the race detector.
			ctx, cancel := context.WithTimeout(context.Background(), 180*time.Second)
			defer cancel()
			c, err := pgx.Connect(ctx, h.dsn("ninja", "ninja", "ai_ninja"))
			if err != nil {
				errs <- err
				return
			}
			defer c.Close(ctx)
			for j := 0; j < 20; j++ {
				var got int
				if err := c.QueryRow(ctx, "select $1::int", i*1000+j).Scan(&got); err != nil {
					errs <- err
					return
				}
				if got != i*1000+j {
					errs <- fmt.Errorf("client %d got %d", i, got)
					return
				}
			}
		}(i)
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
}

// forEachMode runs body against a proxy in session mode and one in
// transaction mode, where every request may land on another server
// connection and statements are rewritten.
func forEachMode(t *testing.T, body func(t *testing.T, h *harness)) {
	for _, mode := range []string{"session", "transaction"} {
		t.Run(mode, func(t *testing.T) {
			body(t, startProxy(t, "pool:\n  mode: "+mode+"\n  max_size: 3\n"))
		})
	}
}
