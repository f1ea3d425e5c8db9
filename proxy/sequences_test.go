package proxy_test

import (
	"fmt"
	"testing"
	"time"

	"github.com/ai-ninja/pgninja/pool"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgproto3"
)

// TestTxnSequenceValuesStayWithTheirClient: with one server connection
// shared, a client's currval or lastval would return the value another
// client's nextval set there. Directly, each client sees its own.
func TestTxnSequenceValuesStayWithTheirClient(t *testing.T) {
	for _, mode := range []pgx.QueryExecMode{pgx.QueryExecModeSimpleProtocol, pgx.QueryExecModeCacheStatement} {
		t.Run(mode.String(), func(t *testing.T) {
			h := startProxy(t, fmt.Sprintf(txnMode, 1, "30s"))
			ctx := ctxT(t, 30*time.Second)
			a, b, fresh := h.ninja(t), h.ninja(t), h.ninja(t)
			if _, err := a.Exec(ctx, "create sequence if not exists seqstay_s; create table if not exists seqstay_t (id serial primary key, x int)"); err != nil {
				t.Fatal(err)
			}
			one := func(c *pgx.Conn, sql string) (int64, error) {
				var v int64
				err := c.QueryRow(ctx, sql, mode).Scan(&v)
				return v, err
			}
			must := func(c *pgx.Conn, sql string) int64 {
				t.Helper()
				v, err := one(c, sql)
				if err != nil {
					t.Fatalf("%s: %v", sql, err)
				}
				return v
			}
			refused := func(c *pgx.Conn, sql string) {
				t.Helper()
				if v, err := one(c, sql); sqlstate(err) != "55000" {
					t.Fatalf("%s = %d, %v; want SQLSTATE 55000", sql, v, err)
				}
			}

			must(a, "select nextval('seqstay_s')")
			vb := must(b, "select nextval('seqstay_s')")
			// a's value is not on the connection any more: b's is.
			refused(a, "select currval('seqstay_s')")
			refused(a, "select lastval()")
			refused(fresh, "select currval('seqstay_s')")
			if got := counterValue(t, h.reg, "pgninja_sequence_reads_refused_total"); got != 3 {
				t.Fatalf("pgninja_sequence_reads_refused_total = %v, want 3", got)
			}
			if got := must(b, "select currval('seqstay_s')"); got != vb {
				t.Fatalf("b's currval = %d, want %d", got, vb)
			}
			if got := must(b, "select lastval()"); got != vb {
				t.Fatalf("b's lastval = %d, want %d", got, vb)
			}

			// A serial column's default sets them too, and the client's
			// next transaction may read them while nobody else ran.
			id := must(a, "insert into seqstay_t (x) values (1) returning id")
			if got := must(a, "select lastval()"); got != id {
				t.Fatalf("lastval after insert = %d, want %d", got, id)
			}
			if _, err := b.Exec(ctx, "insert into seqstay_t (x) values (2)", mode); err != nil {
				t.Fatal(err)
			}
			refused(a, "select currval('seqstay_t_id_seq')")

			// Within one transaction the values are always the client's.
			tx, err := a.Begin(ctx)
			if err != nil {
				t.Fatal(err)
			}
			var v, cur int64
			if err := tx.QueryRow(ctx, "select nextval('seqstay_s')", mode).Scan(&v); err != nil {
				t.Fatal(err)
			}
			if err := tx.QueryRow(ctx, "select currval('seqstay_s')", mode).Scan(&cur); err != nil || cur != v {
				t.Fatalf("currval in the transaction = %d, %v; want %d", cur, err, v)
			}
			if err := tx.Commit(ctx); err != nil {
				t.Fatal(err)
			}
			// After its commit, nobody else has run there.
			if got := must(a, "select currval('seqstay_s')"); got != v {
				t.Fatalf("currval after commit = %d, want %d", got, v)
			}
		})
	}
}

// TestTxnSequenceValuesFollowTheirClient: a client reading its sequence
// values gets the connection holding them when it is idle, even when
// another is on top of the pool, and other clients' transactions there
// that set none leave them alone.
func TestTxnSequenceValuesFollowTheirClient(t *testing.T) {
	const routingOn = "routing:\n  enabled: true\n  health_check_interval: 200ms\n" +
		"  health_check_user: postgres\n  health_check_password: postgres\n"
	for _, routing := range []string{"", routingOn} {
		t.Run(fmt.Sprint("routing=", routing != ""), func(t *testing.T) {
			h := startProxy(t, fmt.Sprintf(txnMode, 2, "30s")+routing)
			ctx := ctxT(t, 30*time.Second)
			a, b, c := h.ninja(t), h.ninja(t), h.ninja(t)
			if _, err := a.Exec(ctx, "create sequence if not exists seqfollow_s"); err != nil {
				t.Fatal(err)
			}
			var v int64
			if err := a.QueryRow(ctx, "select nextval('seqfollow_s')").Scan(&v); err != nil {
				t.Fatal(err)
			}
			// b takes a's connection (the only idle one) and c opens the
			// second; c gives its back last, so that one is on top.
			tb, err := b.Begin(ctx)
			if err != nil {
				t.Fatal(err)
			}
			if _, err := tb.Exec(ctx, "select count(*) from pg_class"); err != nil {
				t.Fatal(err)
			}
			tc := holdServer(t, ctx, c)
			if err := tb.Commit(ctx); err != nil {
				t.Fatal(err)
			}
			if err := tc.Commit(ctx); err != nil {
				t.Fatal(err)
			}
			// A connection is back in the pool before its client has
			// the ReadyForQuery, so both are idle now.
			lent := 0
			h.pools.Each(func(_ pool.Key, p *pool.Pool) {
				st := p.Stats()
				lent += st.Total - st.Idle
			})
			if lent != 0 {
				t.Fatalf("%d connections still lent after every client had its answer", lent)
			}
			var cur int64
			if err := a.QueryRow(ctx, "select currval('seqfollow_s')").Scan(&cur); err != nil || cur != v {
				t.Fatalf("currval = %d, %v; want %d", cur, err, v)
			}
		})
	}
}

// TestTxnCurrvalRightAfterNextval: a client alone reading currval just
// after its nextval finds the connection that ran it idle, however soon
// it asks: the connection goes back to the pool before the client hears
// that its nextval is done.
func TestTxnCurrvalRightAfterNextval(t *testing.T) {
	for _, mode := range []pgx.QueryExecMode{pgx.QueryExecModeSimpleProtocol, pgx.QueryExecModeCacheStatement} {
		t.Run(mode.String(), func(t *testing.T) {
			h := startProxy(t, fmt.Sprintf(txnMode, 3, "30s"))
			ctx := ctxT(t, 60*time.Second)
			a := h.ninja(t)
			if _, err := a.Exec(ctx, "create sequence if not exists seqsoon_s"); err != nil {
				t.Fatal(err)
			}
			for i := range 200 {
				var v, cur int64
				if err := a.QueryRow(ctx, "select nextval('seqsoon_s')", mode).Scan(&v); err != nil {
					t.Fatal(err)
				}
				if err := a.QueryRow(ctx, "select currval('seqsoon_s')", mode).Scan(&cur); err != nil || cur != v {
					t.Fatalf("round %d: currval = %d, %v; want %d", i, cur, err, v)
				}
			}
		})
	}
}

// TestTxnFunctionCallMaySetSequenceValues: a FunctionCall names its
// function by OID, so the proxy cannot tell nextval from any other; it
// counts as setting sequence values.
func TestTxnFunctionCallMaySetSequenceValues(t *testing.T) {
	h := startProxy(t, fmt.Sprintf(txnMode, 1, "30s"))
	ctx := ctxT(t, 30*time.Second)
	b := h.ninja(t)
	if _, err := b.Exec(ctx, "create sequence if not exists seqfp_s"); err != nil {
		t.Fatal(err)
	}
	var vb int64
	if err := b.QueryRow(ctx, "select nextval('seqfp_s')").Scan(&vb); err != nil {
		t.Fatal(err)
	}
	a := loginRaw(t, rawConn(t, h), "trusty")
	const nextvalOID = 1574 // nextval(regclass)
	a.Send(&pgproto3.FunctionCall{Function: nextvalOID, Arguments: [][]byte{[]byte("seqfp_s")}})
	msgs := expectMessages(t, a, "FunctionCallResponse", "ReadyForQuery")
	if got := string(msgs[0].(*pgproto3.FunctionCallResponse).Result); got == fmt.Sprint(vb) {
		t.Fatalf("nextval by FunctionCall = %s, the value b had", got)
	}
	var cur int64
	if err := b.QueryRow(ctx, "select currval('seqfp_s')").Scan(&cur); sqlstate(err) != "55000" {
		t.Fatalf("b's currval after a's FunctionCall = %d, %v; want 55000 (b's value was %d)", cur, err, vb)
	}
}
