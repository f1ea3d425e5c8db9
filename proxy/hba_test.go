package proxy_test

import (
	"fmt"
	"os"
	osuser "os/user"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/ai-ninja/pgninja/config"
	"github.com/ai-ninja/pgninja/internal/testbed"
	"github.com/ai-ninja/pgninja/internal/testcert"
	"github.com/jackc/pgx/v5"
)

// TestHBAFile: with auth.hba_file, the first rule matching a client's
// connection type, database, user and address decides its method, over
// the user's own, or refuses it with PostgreSQL's 28000 and words; the
// admin console is under the rules too. A reload takes a new file, and
// one that does not parse is refused whole, naming its line.
func TestHBAFile(t *testing.T) {
	env := testbed.Require(t)
	certFile, keyFile := testcert.Files(t)
	dir := t.TempDir()
	hbaFile := filepath.Join(dir, "hba.conf")
	write := func(text string) {
		t.Helper()
		if err := os.WriteFile(hbaFile, []byte(text), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	write(fmt.Sprintf(`# TYPE  DATABASE  USER     ADDRESS       METHOD
host    ai_ninja  trusty   127.0.0.1/32  reject
host    ai_ninja  md5user  127.0.0.1/32  trust
hostssl all       ninja    127.0.0.1/32  scram-sha-256
host    pgninja   ninja    127.0.0.1/32  scram-sha-256
host    all       %s       0.0.0.0/0     md5
`, env.SuperUser))
	extra := fmt.Sprintf("%sadmin_users: [ninja]\ntls:\n  cert_file: %s\n  key_file: %s\n", backendsOf(t, env), certFile, keyFile)
	h := startWith(t, env, extra+"auth:\n  hba_file: "+hbaFile+"\n")
	ctx := ctxT(t, 30*time.Second)
	dsn := func(user, pass, db, sslmode string) string {
		return fmt.Sprintf("postgres://%s:%s@%s/%s?sslmode=%s", user, pass, h.addr, db, sslmode)
	}
	login := func(dsn string) error {
		c, err := pgx.Connect(ctx, dsn)
		if err != nil {
			return err
		}
		defer c.Close(ctx)
		var one int
		return c.QueryRow(ctx, "select 1").Scan(&one)
	}
	refused := func(name, dsn, words string) {
		t.Helper()
		err := login(dsn)
		if sqlstate(err) != "28000" || !strings.Contains(err.Error(), words) {
			t.Errorf("%s: %v, want 28000 %s", name, err, words)
		}
	}
	refused("a rejecting rule", dsn("trusty", "", "ai_ninja", "disable"),
		`pg_hba.conf rejects connection for host "127.0.0.1", user "trusty", database "ai_ninja", no encryption`)
	refused("no rule for a plain connection", dsn("ninja", "ninja", "ai_ninja", "disable"),
		`no pg_hba.conf entry for host "127.0.0.1", user "ninja", database "ai_ninja", no encryption`)
	if err := login(dsn("ninja", "ninja", "ai_ninja", "require")); err != nil {
		t.Errorf("hostssl rule, on TLS: %v", err)
	}
	if err := login(dsn("ninja", "wrong", "ai_ninja", "require")); sqlstate(err) != "28P01" {
		t.Errorf("hostssl rule, wrong password: %v, want 28P01", err)
	}
	// md5user's own method is md5; the rule's trust wins.
	if err := login(dsn("md5user", "", "ai_ninja", "disable")); err != nil {
		t.Errorf("a trust rule over the user's md5: %v", err)
	}
	if err := login(dsn(env.SuperUser, env.SuperPass, "ai_ninja", "disable")); err != nil {
		t.Errorf("an md5 rule: %v", err)
	}
	con, err := h.console(t, "ninja", "ninja", "pgninja")
	if err != nil {
		t.Fatalf("the console under its rule: %v", err)
	}
	rules := consoleRows(t, con, "SHOW HBA")
	if len(rules) != 5 || rules[3]["line_number"] != "5" || rules[3]["type"] != "host" || rules[3]["database"] != "pgninja" ||
		rules[3]["user_name"] != "ninja" || rules[3]["address"] != "127.0.0.1/32" || rules[3]["auth_method"] != "scram-sha-256" {
		t.Errorf("SHOW HBA: %v", rules)
	}
	if rows, ok := h.srv.Show("hba"); !ok || len(rows) != 5 || rows[0]["line_number"] != int64(2) || rows[0]["auth_method"] != "reject" {
		t.Errorf("GET /show/hba: %v", rows)
	}
	if _, err := h.console(t, "ninja", "ninja", "pgbouncer"); sqlstate(err) != "28000" {
		t.Errorf("the console under a name no rule has: %v, want 28000", err)
	}
	if n := loginsWithResult(t, h, "hba_refused"); n != 3 {
		t.Errorf("logins_total{result=hba_refused} = %v, want 3", n)
	}

	reload := func(hbaLine string) error {
		cfg, err := config.Parse([]byte("listen: 127.0.0.1:0\nadmin_listen: 127.0.0.1:0\n"+
			"users:\n  - {name: ninja, password: ninja}\n  - {name: trusty, auth: trust, server_user: ninja, server_password: ninja}\n"+
			extra+hbaLine), nil, nil)
		if err != nil {
			t.Fatal(err)
		}
		return h.srv.Reload(cfg)
	}
	write("host all all all trust\nhost all all all password\n")
	if err := reload("auth:\n  hba_file: " + hbaFile + "\n"); err == nil || !strings.Contains(err.Error(), "hba.conf:2: ") {
		t.Errorf("a reload with a file that does not parse: %v, want it refused naming line 2", err)
	}
	refused("the rules after a refused reload", dsn("trusty", "", "ai_ninja", "disable"), "pg_hba.conf rejects")
	if err := reload(""); err != nil {
		t.Fatal(err)
	}
	if err := login(dsn("trusty", "", "ai_ninja", "disable")); err != nil {
		t.Errorf("without a file after the reload: %v", err)
	}
}

// loginsWithResult reads pgninja_client_logins_total for one result.
func loginsWithResult(t *testing.T, h *harness, result string) float64 {
	t.Helper()
	mfs, err := h.reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != "pgninja_client_logins_total" {
			continue
		}
		for _, m := range mf.GetMetric() {
			for _, l := range m.GetLabel() {
				if l.GetName() == "result" && l.GetValue() == result {
					return m.GetCounter().GetValue()
				}
			}
		}
	}
	return 0
}

// TestHBAPeerOnTheUnixSocket: a local peer rule lets in, without a
// password, the client whose operating system user has the name it logs
// in as, and refuses another name with PostgreSQL's 28000 and words; TCP
// clients are under the host rules.
func TestHBAPeerOnTheUnixSocket(t *testing.T) {
	env := testbed.Require(t)
	me, err := osuser.Current()
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	hbaFile := filepath.Join(dir, "hba.conf")
	if err := os.WriteFile(hbaFile, []byte("local all all peer\nhost all all 127.0.0.1/32 scram-sha-256\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	h := startServer(t, env, backendsOf(t, env)+"auth:\n  hba_file: "+hbaFile+"\n", nil, serverHooks{
		sets:  []string{"listen=" + freeAddr(t), "unix_socket_dir=" + dir},
		users: fmt.Sprintf("  - {name: %q, server_user: ninja, server_password: ninja}\n", me.Username),
	})
	ctx := ctxT(t, 30*time.Second)
	unix := func(user string) error {
		c, err := pgx.Connect(ctx, fmt.Sprintf("host=%s port=%d user=%s dbname=ai_ninja sslmode=disable", dir, h.port(), user))
		if err != nil {
			return err
		}
		defer c.Close(ctx)
		var who string
		return c.QueryRow(ctx, "select current_user").Scan(&who)
	}
	if err := unix(me.Username); err != nil {
		t.Errorf("peer as %s, the test's own user: %v", me.Username, err)
	}
	err = unix("ninja")
	if sqlstate(err) != "28000" || !strings.Contains(err.Error(), `Peer authentication failed for user "ninja"`) {
		t.Errorf("peer as ninja, not the test's user: %v, want 28000 Peer authentication failed", err)
	}
	if n := loginsWithResult(t, h, "peer_failed"); n != 1 {
		t.Errorf("logins_total{result=peer_failed} = %v, want 1", n)
	}
	h.ninja(t) // TCP: the host rule's SCRAM
}

// TestHBAClientCertificates: with tls.client_ca_file, a hostssl cert rule
// lets in, without a password, the client whose verified certificate
// names its user; clientcert=verify-full asks for that besides the
// password, clientcert=verify-ca for any verified certificate. Without a
// certificate, or with another user's, the client gets PostgreSQL's
// 28000; a certificate the CAs do not vouch for fails the handshake.
func TestHBAClientCertificates(t *testing.T) {
	env := testbed.Require(t)
	serverCert, serverKey := testcert.Files(t)
	ninjaCert, ninjaKey := testcert.FilesFor(t, "ninja")
	trustyCert, trustyKey := testcert.FilesFor(t, "trusty")
	strangerCert, strangerKey := testcert.FilesFor(t, "ninja") // not in the CA file
	dir := t.TempDir()
	caFile := filepath.Join(dir, "clients.pem")
	var pems []byte
	for _, f := range []string{ninjaCert, trustyCert} {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		pems = append(pems, b...)
	}
	hbaFile := filepath.Join(dir, "hba.conf")
	for file, text := range map[string]string{caFile: string(pems), hbaFile: `
hostssl ai_ninja  ninja    127.0.0.1/32  cert
hostssl postgres  ninja    127.0.0.1/32  scram-sha-256 clientcert=verify-full
hostssl postgres  md5user  127.0.0.1/32  md5 clientcert=verify-ca
`} {
		if err := os.WriteFile(file, []byte(text), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	h := startWith(t, env, fmt.Sprintf("%sdatabases: {ai_ninja: {}, postgres: {}}\ntls:\n  cert_file: %s\n  key_file: %s\n  client_ca_file: %s\nauth:\n  hba_file: %s\n",
		backendsOf(t, env), serverCert, serverKey, caFile, hbaFile))
	ctx := ctxT(t, 30*time.Second)
	login := func(user, pass, db, cert, key string) error {
		dsn := fmt.Sprintf("postgres://%s:%s@%s/%s?sslmode=require", user, pass, h.addr, db)
		if cert != "" {
			dsn += "&sslcert=" + cert + "&sslkey=" + key
		}
		c, err := pgx.Connect(ctx, dsn)
		if err != nil {
			return err
		}
		defer c.Close(ctx)
		var who string
		return c.QueryRow(ctx, "select current_user").Scan(&who)
	}
	for _, tt := range []struct {
		name, user, pass, db, cert, key string
		want                            string // "" to get in, else the SQLSTATE or words
	}{
		{"cert: the user's certificate, no password", "ninja", "", "ai_ninja", ninjaCert, ninjaKey, ""},
		{"cert: no certificate", "ninja", "ninja", "ai_ninja", "", "", "connection requires a valid client certificate"},
		{"cert: another user's certificate", "ninja", "", "ai_ninja", trustyCert, trustyKey, `certificate authentication failed for user "ninja"`},
		{"verify-full: certificate and password", "ninja", "ninja", "postgres", ninjaCert, ninjaKey, ""},
		{"verify-full: certificate, wrong password", "ninja", "wrong", "postgres", ninjaCert, ninjaKey, "28P01"},
		{"verify-full: another user's certificate", "ninja", "ninja", "postgres", trustyCert, trustyKey, "certificate validation (clientcert=verify-full) failed"},
		{"verify-ca: any verified certificate, and the password", "md5user", "ninja", "postgres", trustyCert, trustyKey, ""},
		{"verify-ca: no certificate", "md5user", "ninja", "postgres", "", "", "connection requires a valid client certificate"},
		{"a certificate the CAs do not vouch for", "ninja", "", "ai_ninja", strangerCert, strangerKey, "certificate"},
	} {
		err := login(tt.user, tt.pass, tt.db, tt.cert, tt.key)
		switch {
		case tt.want == "" && err != nil:
			t.Errorf("%s: %v", tt.name, err)
		case tt.want != "" && (err == nil || sqlstate(err) != tt.want && !strings.Contains(err.Error(), tt.want)):
			t.Errorf("%s: %v, want %s", tt.name, err, tt.want)
		}
	}
	if n := loginsWithResult(t, h, "cert_failed"); n != 4 {
		t.Errorf("logins_total{result=cert_failed} = %v, want 4", n)
	}
}
