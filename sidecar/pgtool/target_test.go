package pgtool

import (
	"strings"
	"testing"
)

func TestParseDSN(t *testing.T) {
	tests := []struct {
		dsn  string
		want Target
	}{
		{"postgres://ninja:s3cret@127.0.0.1:15432/ai_ninja?sslmode=disable",
			Target{Host: "127.0.0.1", Port: 15432, User: "ninja", Password: "s3cret", Database: "ai_ninja", SSLMode: "disable"}},
		{"host=db port=5433 user=u password='p w' dbname=x sslmode=require",
			Target{Host: "db", Port: 5433, User: "u", Password: "p w", Database: "x", SSLMode: "require"}},
	}
	for _, tt := range tests {
		got, err := ParseDSN(tt.dsn)
		if err != nil {
			t.Fatal(err)
		}
		if got != tt.want {
			t.Errorf("%s: got %+v", tt.dsn, got)
		}
	}
}

func TestConnInfoHidesPassword(t *testing.T) {
	tg := Target{Host: "h", Port: 1, User: "o'brien", Password: "pw", Database: "d"}
	ci := tg.ConnInfo()
	if strings.Contains(ci, "pw") || !strings.Contains(ci, `user='o\'brien'`) {
		t.Fatalf("conninfo %q", ci)
	}
	env := tg.ToolEnv([]string{"PGPASSWORD=old", "HOME=/root"})
	if len(env) != 2 || env[1] != "PGPASSWORD=pw" {
		t.Fatalf("env %v", env)
	}
}

func TestCompare(t *testing.T) {
	want := []TableSum{{"public", "a", 1, "x"}, {"public", "b", 2, "y"}, {"public", "c", 3, "z"}, {"public", "d", 0, "0"}}
	got := []TableSum{{"public", "a", 1, "x"}, {"public", "b", 3, "y"}, {"public", "c", 3, "Z"}, {"public", "e", 0, "0"}}
	var s []string
	for _, m := range Compare(want, got) {
		s = append(s, m.Table+":"+m.What)
	}
	if strings.Join(s, " ") != "public.b:rows public.c:checksum public.d:missing public.e:unexpected" {
		t.Fatalf("got %v", s)
	}
}
