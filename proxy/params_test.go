package proxy

import (
	"context"
	"fmt"
	"maps"
	"testing"
	"time"

	"github.com/ai-ninja/pgninja/internal/testbed"
	"github.com/ai-ninja/pgninja/parser"
	"github.com/jackc/pgx/v5"
)

// TestParseHashFollowsOnlyParseSettings: server copies of prepared
// statements are named by the settings that change what a statement's
// text means, and by no others, so that clients differing only in, say,
// application_name still share them.
func TestParseHashFollowsOnlyParseSettings(t *testing.T) {
	base := map[string]string{"application_name": "app", "search_path": "public"}
	for _, tc := range []struct {
		name    string
		startup map[string]string
		set     []parser.SetParam
		same    bool
	}{
		{"nothing set", base, nil, true},
		{"another application_name at startup", map[string]string{"application_name": "other", "search_path": "public"}, nil, true},
		{"statement_timeout set", base, []parser.SetParam{{Name: "statement_timeout", Stmt: "set statement_timeout = 5"}}, true},
		{"another search_path at startup", map[string]string{"application_name": "app", "search_path": "tenant"}, nil, false},
		{"search_path set", base, []parser.SetParam{{Name: "search_path", Stmt: "set search_path = tenant"}}, false},
		{"time zone set", base, []parser.SetParam{{Name: "timezone", Stmt: "set time zone 'Asia/Tokyo'"}}, false},
		{"DateStyle set", base, []parser.SetParam{{Name: "datestyle", Stmt: "set datestyle = dmy"}}, false},
		{"search_path set and reset", base, []parser.SetParam{
			{Name: "search_path", Stmt: "set search_path = tenant"}, {Name: "search_path", Reset: true, Stmt: "reset search_path"}}, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			want := newParamSet(base).parseHash.Load()
			p := newParamSet(tc.startup)
			p.track(tc.set)
			if got := p.parseHash.Load(); (got == want) != tc.same {
				t.Fatalf("parse hash %x against %x: want same=%v", got, want, tc.same)
			}
		})
	}
}

// TestStartupSQLMeansWhatTheStartupPacketDoes: the statement that applies
// a client's setting on a server connection must leave the value a
// startup packet with that setting leaves, for SET and set_config alike,
// and for a value with quotes and backslashes on a connection whose
// client turned standard_conforming_strings off.
func TestStartupSQLMeansWhatTheStartupPacketDoes(t *testing.T) {
	env := testbed.Require(t)
	values := map[string]string{
		"application_name": `it's a \ test`, "client_encoding": "UTF8", "datestyle": "SQL, DMY",
		"timezone": "Asia/Tokyo", "intervalstyle": "iso_8601", "extra_float_digits": "1",
		"statement_timeout": "5s", "lock_timeout": "1min", "idle_in_transaction_session_timeout": "7s",
		"bytea_output": "escape", "standard_conforming_strings": "on",
		// Not scalar: set_config keeps the list a list.
		"search_path": "tenant_a, public", "work_mem": "9MB",
	}
	for name := range scalarSettings {
		if _, ok := values[name]; !ok {
			t.Errorf("no test value for %s", name)
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	dsn := fmt.Sprintf("postgres://%s:%s@%s/postgres?sslmode=disable", env.SuperUser, env.SuperPass, env.Primary)
	show := func(c *pgx.Conn, name string) string {
		t.Helper()
		var v string
		if err := c.QueryRow(ctx, "select current_setting($1)", name).Scan(&v); err != nil {
			t.Fatalf("current_setting(%s): %v", name, err)
		}
		return v
	}
	connect := func(params map[string]string) *pgx.Conn {
		t.Helper()
		cfg, err := pgx.ParseConfig(dsn)
		if err != nil {
			t.Fatal(err)
		}
		maps.Copy(cfg.RuntimeParams, params)
		c, err := pgx.ConnectConfig(ctx, cfg)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = c.Close(context.Background()) })
		return c
	}
	plain := connect(nil)
	for _, scs := range []string{"on", "off"} {
		for name, value := range values {
			t.Run(name+"/standard_conforming_strings="+scs, func(t *testing.T) {
				want := show(connect(map[string]string{name: value}), name)
				if _, err := plain.Exec(ctx, "reset all"); err != nil {
					t.Fatal(err)
				}
				if _, err := plain.Exec(ctx, "set standard_conforming_strings = "+scs); err != nil {
					t.Fatal(err)
				}
				sql := startupSQL(name, value)
				if _, err := plain.Exec(ctx, sql, pgx.QueryExecModeSimpleProtocol); err != nil {
					t.Fatalf("%s: %v", sql, err)
				}
				if got := show(plain, name); got != want {
					t.Errorf("%s left %q; a startup packet leaves %q", sql, got, want)
				}
			})
		}
	}
}
