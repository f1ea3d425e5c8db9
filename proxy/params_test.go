package proxy

import (
	"testing"

	"github.com/ai-ninja/pgninja/parser"
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
