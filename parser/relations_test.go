package parser

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgconn"
)

// sorted returns names sorted, for comparing sets.
func sorted(names []string) []string {
	names = slices.Clone(names)
	slices.Sort(names)
	return names
}

// relationCase is a statement and the tables a classifier with the
// catalog's relations must give it.
type relationCase struct {
	sql           string
	reads, writes []string
	unnamed       bool
}

func checkRelations(t *testing.T, c *Classifier, cases []relationCase) {
	t.Helper()
	for _, tc := range cases {
		got := c.Classify(tc.sql)
		if got.Prepared != nil {
			got = got.Prepared
		}
		if !slices.Equal(sorted(got.ReadTables), sorted(tc.reads)) || !slices.Equal(sorted(got.WriteTables), sorted(tc.writes)) ||
			got.UnnamedWrites != tc.unnamed {
			t.Errorf("%q: reads %v writes %v unnamed %v; want %v %v %v",
				tc.sql, got.ReadTables, got.WriteTables, got.UnnamedWrites, tc.reads, tc.writes, tc.unnamed)
		}
	}
}

func TestRelationsExpand(t *testing.T) {
	r := &Relations{views: map[string][]string{}, parents: map[string][]string{}, cascades: map[string][]string{}, unnamed: map[string]bool{}}
	for _, e := range [][3]string{
		{"view", "active_users", "users"},
		{"view", "busy_users", "active_users"},
		{"view", "busy_users", "call_records"},
		{"parent", "call_records_2026_01", "call_records"},
		{"cascade", "users", "smart_whitelists"},
		{"cascade", "users", "call_records_2026_01"},
		{"cascade", "smart_whitelists", "whitelist_notes"},
		{"unnamed", "spam_profiles", ""},
	} {
		r.add(e[0], e[1], e[2])
	}
	c := NewClassifier(64, nil)
	before := c.Classify("SELECT * FROM active_users")
	c.SetCatalog(nil, r)
	if after := c.Classify("SELECT * FROM active_users"); after == before || len(after.ReadTables) != 2 {
		t.Fatalf("SetCatalog kept the cached classification: %v", after.ReadTables)
	}
	checkRelations(t, c, []relationCase{
		{sql: "SELECT * FROM public.active_users", reads: []string{"public.active_users", "users"}},
		{sql: "SELECT * FROM busy_users b JOIN users u ON u.id = b.id", reads: []string{"busy_users", "users", "active_users", "call_records"}},
		{sql: "SELECT count(*) FROM call_records_2026_01", reads: []string{"call_records_2026_01", "call_records"}},
		{sql: "SELECT count(*) FROM call_records", reads: []string{"call_records"}},
		{sql: "INSERT INTO call_records_2026_01 (id) VALUES (1)", writes: []string{"call_records_2026_01", "call_records"}},
		{sql: "DELETE FROM users WHERE id = 1",
			writes: []string{"users", "smart_whitelists", "call_records_2026_01", "whitelist_notes", "call_records"}},
		{sql: "UPDATE active_users SET name = 'x'", writes: []string{"active_users", "users", "smart_whitelists", "call_records_2026_01", "whitelist_notes", "call_records"}},
		{sql: "UPDATE spam_profiles SET score = 1", writes: []string{"spam_profiles"}, unnamed: true},
		{sql: "SELECT * FROM spam_profiles", reads: []string{"spam_profiles"}},
		{sql: "PREPARE q AS SELECT * FROM active_users", reads: []string{"active_users", "users"}},
		{sql: "TRUNCATE whitelist_notes", writes: []string{"whitelist_notes"}},
		{sql: "TRUNCATE whitelist_notes CASCADE", writes: []string{"whitelist_notes"}, unnamed: true},
	})
}

// TestRelationsFromServer reads the catalog of the test bed's primary
// (it fails under CI when the test bed is missing).
func TestRelationsFromServer(t *testing.T) {
	ctx, conn, env := serverConn(t)
	// Unique names: relations are keyed without their schema.
	p := fmt.Sprintf("rm%d", time.Now().UnixNano()%1_000_000_000)
	ddl := strings.ReplaceAll(`create schema P;
create table P.users (id int primary key, name text);
create table P.calls (id int, user_id int references P.users (id) on delete cascade, at date) partition by range (at);
create table P.calls_2026 partition of P.calls for values from ('2026-01-01') to ('2027-01-01') partition by range (id);
create table P.calls_2026_low partition of P.calls_2026 for values from (0) to (1000);
create table P.base (x int);
create table P.derived (y int) inherits (P.base);
create table P.notes (user_id int references P.users (id));
create view P.active as select * from P.users where name is not null;
create view P.active_calls as select c.* from P.calls c join P.active a on a.id = c.user_id;
create table P.audit (x text);
create function P.audit_f() returns trigger language plpgsql as $$begin insert into P.audit values (tg_op); return null; end$$;
create trigger audited after update on P.notes for each row execute function P.audit_f();
create function P.stamp_f() returns trigger language plpgsql stable as $$begin return new; end$$;
create trigger stamped before update on P.users for each row execute function P.stamp_f();
create table P.ruled (x int);
create rule ruled_log as on insert to P.ruled do also insert into P.audit values ('r');`, "P.", p+".")
	ddl = strings.ReplaceAll(ddl, "schema P;", "schema "+p+";")
	if _, err := conn.Exec(ctx, ddl).ReadAll(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		c, err := pgconn.Connect(context.Background(), env.SuperDSN("postgres"))
		if err == nil {
			_, _ = c.Exec(context.Background(), "drop schema "+p+" cascade").ReadAll()
			c.Close(context.Background())
		}
	})
	rels, err := LoadRelations(ctx, PgConnRows(conn))
	if err != nil {
		t.Fatal(err)
	}
	c := NewClassifier(64, nil)
	c.SetCatalog(nil, rels)
	q := func(s string) string { return strings.ReplaceAll(s, "P.", p+".") }
	checkRelations(t, c, []relationCase{
		{sql: q("select * from P.users"), reads: []string{q("P.users")}},
		{sql: q("select * from P.active_calls"), reads: []string{q("P.active_calls"), "calls", "active", "users"}},
		{sql: q("select * from P.calls_2026"), reads: []string{q("P.calls_2026"), "calls"}},
		{sql: q("insert into P.calls_2026 values (1, 1, '2026-05-01')"), writes: []string{q("P.calls_2026"), "calls"}},
		{sql: q("select * from P.calls_2026_low"), reads: []string{q("P.calls_2026_low"), "calls_2026", "calls"}},
		{sql: q("insert into P.derived values (1, 2)"), writes: []string{q("P.derived"), "base"}},
		{sql: q("select * from P.base"), reads: []string{q("P.base")}},
		{sql: q("delete from P.users where id = 1"), writes: []string{q("P.users"), "calls", "calls_2026", "calls_2026_low"}},
		{sql: q("update P.notes set user_id = 2"), writes: []string{q("P.notes")}, unnamed: true},
		{sql: q("update P.active set name = 'x'"), writes: []string{q("P.active"), "users", "calls", "calls_2026", "calls_2026_low"}},
		{sql: q("insert into P.ruled values (1)"), writes: []string{q("P.ruled")}, unnamed: true},
	})
}
