package hba

import (
	"net/netip"
	"strings"
	"testing"
)

const sample = `
# TYPE  DATABASE        USER            ADDRESS                 METHOD
local   all             postgres                                trust
local   all             all                                     peer
hostssl ai_ninja        ninja           10.0.0.0/8              scram-sha-256 clientcert=verify-ca
host    "all"           ninja           10.0.0.0/8              reject   # "all" quoted is a name
host    sameuser        all             192.168.1.0 255.255.255.0 md5
host    app, reports    alice,"Bob"     127.0.0.1/32            md5
host    replication     all             all                     trust
hostnossl all           all             ::1/128                 reject
hostgssenc all          all             all                     trust
hostssl all             alice           all                     cert
host    all             all             0.0.0.0/0               scram-sha-256
`

func TestMatch(t *testing.T) {
	rs, err := Parse(strings.NewReader(sample), "hba.conf")
	if err != nil {
		t.Fatal(err)
	}
	addr := netip.MustParseAddr
	cases := []struct {
		name     string
		c        Client
		line     int // 0: no rule
		method   string
		database string
	}{
		{"local superuser", Client{Local: true, Database: "x", User: "postgres"}, 3, "trust", ""},
		{"local other user: peer", Client{Local: true, Database: "x", User: "ninja"}, 4, "peer", ""},
		{"hostssl on TLS", Client{TLS: true, Addr: addr("10.1.2.3"), Database: "ai_ninja", User: "ninja"}, 5, "scram-sha-256", ""},
		{"hostssl skipped without TLS; the next line's database is the name all", Client{Addr: addr("10.1.2.3"), Database: "ai_ninja", User: "ninja"}, 13, "scram-sha-256", ""},
		{"a database named all", Client{Addr: addr("10.1.2.3"), Database: "all", User: "ninja"}, 6, "reject", ""},
		{"sameuser with an address and a mask", Client{Addr: addr("192.168.1.77"), Database: "carol", User: "carol"}, 7, "md5", ""},
		{"sameuser, another database", Client{Addr: addr("192.168.1.77"), Database: "app", User: "carol"}, 13, "scram-sha-256", ""},
		{"lists with blanks after commas", Client{Addr: addr("127.0.0.1"), Database: "reports", User: "Bob"}, 8, "md5", ""},
		{"names are case-sensitive", Client{Addr: addr("127.0.0.1"), Database: "reports", User: "bob"}, 13, "scram-sha-256", ""},
		{"replication matches no client", Client{Addr: addr("127.0.0.2"), Database: "replication", User: "x"}, 13, "scram-sha-256", ""},
		{"IPv6 without TLS", Client{Addr: addr("::1"), Database: "x", User: "y"}, 10, "reject", ""},
		{"IPv6 with TLS: hostgssenc never, and no rule for ::1", Client{TLS: true, Addr: addr("::1"), Database: "x", User: "y"}, 0, "", ""},
		{"an IPv4-mapped IPv6 address is its IPv4 one", Client{Addr: addr("::ffff:10.9.9.9"), Database: "x", User: "y"}, 13, "scram-sha-256", ""},
	}
	for _, tc := range cases {
		r, ok := rs.Match(tc.c)
		switch {
		case tc.line == 0 && ok:
			t.Errorf("%s: matched line %d, want none", tc.name, r.Line)
		case tc.line != 0 && (!ok || r.Line != tc.line || r.Method != tc.method):
			t.Errorf("%s: line %d %s (matched %v), want line %d %s", tc.name, r.Line, r.Method, ok, tc.line, tc.method)
		}
	}
}

// TestCRLF: a file with CRLF line ends reads as with LF ones.
func TestCRLF(t *testing.T) {
	rs, err := Parse(strings.NewReader(strings.ReplaceAll(sample, "\n", "\r\n")), "hba.conf")
	if err != nil {
		t.Fatal(err)
	}
	lf, _ := Parse(strings.NewReader(sample), "hba.conf")
	if len(rs.Rules) != len(lf.Rules) || rs.Rules[len(rs.Rules)-1].Method != "scram-sha-256" {
		t.Errorf("CRLF: %d rules, the last %q; want %d, scram-sha-256", len(rs.Rules), rs.Rules[len(rs.Rules)-1].Method, len(lf.Rules))
	}
}

func TestParseErrors(t *testing.T) {
	for _, tc := range []struct{ line, want string }{
		{"hots all all all trust", `unknown connection type "hots"`},
		{"host all all trust", "too few fields"},
		{"local all all", "too few fields"},
		{"host all all all password", `method "password" is not supported`},
		{"host all all all ldap", `method "ldap" is not supported`},
		{"host all all all peer", "only supported on local sockets"},
		{"local all all peer map=omicron", `option "map=omicron" is not supported`},
		{"host all all all cert", "only supported on hostssl"},
		{"host all all all md5 clientcert=verify-ca", "only be configured for hostssl"},
		{"hostssl all all all md5 clientcert=1", "verify-ca or verify-full"},
		{"hostssl all all all cert clientcert=verify-ca", "only accepts verify-full"},
		{"host all all all md5 clientcert=verify-full", "only be configured for hostssl"},
		{"host all +admins all md5", "is a group"},
		{"host @dbs all all md5", "from files"},
		{"host samerole all all md5", "role membership"},
		{"host all all db.example.com md5", "host names are not supported"},
		{"host all all samenet md5", "write the network"},
		{"host all all 10.0.0.1/8 md5", "bits set beyond its mask"},
		{"host all all 10.0.0.0 255.0.255.0 md5", "not contiguous"},
		{"host all all 10.0.0.0 md5", "does not fit"},
		{`host "all all all md5`, "unterminated"},
		{"host a, all all md5", "too few fields"},
		{"host a,b, all all md5", "too few fields"},
		{"host all,a all all md5", "database all in a list"},
		{"host all a,all all md5", "user all in a list"},
		{"host all all all md5,trust", "one value"},
	} {
		_, err := Parse(strings.NewReader("# first line\n"+tc.line+"\n"), "f")
		if err == nil || !strings.Contains(err.Error(), tc.want) || !strings.HasPrefix(err.Error(), "f:2: ") {
			t.Errorf("%q: %v, want f:2: ...%s", tc.line, err, tc.want)
		}
	}
}

func TestMaskBits(t *testing.T) {
	for _, tc := range []struct {
		mask string
		bits int
		ok   bool
	}{
		{"255.255.255.255", 32, true},
		{"255.255.254.0", 23, true},
		{"0.0.0.0", 0, true},
		{"255.0.255.0", 0, false},
		{"ffff:ffff::", 32, true},
	} {
		bits, ok := maskBits(netip.MustParseAddr(tc.mask))
		if bits != tc.bits || ok != tc.ok {
			t.Errorf("%s: %d %v, want %d %v", tc.mask, bits, ok, tc.bits, tc.ok)
		}
	}
}

func TestRuleText(t *testing.T) {
	rs, err := Parse(strings.NewReader(sample), "hba.conf")
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, r := range rs.Rules {
		got = append(got, strings.TrimSpace(strings.Join([]string{r.TypeName, r.DatabaseText(), r.UserText(), r.AddressText(), r.Method, r.OptionsText()}, " ")))
	}
	want := []string{
		"local all postgres  trust",
		"local all all  peer",
		"hostssl ai_ninja ninja 10.0.0.0/8 scram-sha-256 clientcert=verify-ca",
		`host "all" ninja 10.0.0.0/8 reject`,
		"host sameuser all 192.168.1.0/24 md5",
		"host app,reports alice,Bob 127.0.0.1/32 md5",
		"host replication all all trust",
		"hostnossl all all ::1/128 reject",
		"hostgssenc all all all trust",
		"hostssl all alice all cert clientcert=verify-full",
		"host all all 0.0.0.0/0 scram-sha-256",
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("rules as text:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}
