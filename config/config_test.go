package config

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

const minimal = `
backends:
  - name: primary
    port: 15432
users:
  - name: ninja
    password: ninja
`

func TestParseFillsDefaults(t *testing.T) {
	cfg, err := Parse([]byte(minimal), nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Listen != "127.0.0.1:6432" || cfg.Pool.MaxSize != 20 || cfg.Pool.Mode != PoolSession {
		t.Fatalf("defaults not applied: %+v", cfg)
	}
	if d, ok := cfg.Database("ai_ninja"); !ok || d.DBName != "ai_ninja" {
		t.Fatalf("wildcard database: %+v %v", d, ok)
	}
}

// log_stats is on unless turned off, in the file, by a flag or the
// environment, which may turn it on again.
func TestLogStatsDefaultsOn(t *testing.T) {
	tests := []struct {
		name      string
		yaml      string
		overrides []string
		env       []string
		want      bool
	}{
		{"default", minimal, nil, nil, true},
		{"file off", minimal + "log_stats: false\n", nil, nil, false},
		{"flag off", minimal, []string{"log_stats=false"}, nil, false},
		{"env on over file off", minimal + "log_stats: false\n", nil, []string{"PGNINJA_LOG_STATS=true"}, true},
	}
	for _, tt := range tests {
		cfg, err := Parse([]byte(tt.yaml), tt.overrides, tt.env)
		if err != nil {
			t.Fatalf("%s: %v", tt.name, err)
		}
		if *cfg.LogStats != tt.want || cfg.StatsPeriod != time.Minute {
			t.Errorf("%s: log_stats %v, stats_period %v; want %v, 1m", tt.name, *cfg.LogStats, cfg.StatsPeriod, tt.want)
		}
	}
}

// restart_wait's zero is a setting (do not wait), so an explicit 0 must
// survive the defaults, from the file, a flag or the environment.
func TestRestartWaitZeroIsKept(t *testing.T) {
	tests := []struct {
		name      string
		yaml      string
		overrides []string
		env       []string
		want      time.Duration
	}{
		{"default", minimal, nil, nil, 30 * time.Second},
		{"file 0", minimal + "pool:\n  restart_wait: 0s\n", nil, nil, 0},
		{"file 5s", minimal + "pool:\n  restart_wait: 5s\n", nil, nil, 5 * time.Second},
		{"flag 0", minimal, []string{"pool.restart_wait=0s"}, nil, 0},
		{"env 0", minimal + "pool:\n  restart_wait: 5s\n", nil, []string{"PGNINJA_POOL_RESTART_WAIT=0s"}, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg, err := Parse([]byte(tt.yaml), tt.overrides, tt.env)
			if err != nil {
				t.Fatal(err)
			}
			if cfg.Pool.RestartWait != tt.want {
				t.Fatalf("restart_wait %v, want %v", cfg.Pool.RestartWait, tt.want)
			}
		})
	}
}

func TestPrecedence(t *testing.T) {
	yaml := minimal + "pool:\n  max_size: 5\n  acquire_timeout: 3s\n"
	tests := []struct {
		name      string
		overrides []string
		env       []string
		wantSize  int
		wantWait  time.Duration
	}{
		{"file", nil, nil, 5, 3 * time.Second},
		{"flag over file", []string{"pool.max_size=7"}, nil, 7, 3 * time.Second},
		{"env over flag", []string{"pool.max_size=7"}, []string{"PGNINJA_POOL_MAX_SIZE=9"}, 9, 3 * time.Second},
		{"env duration", nil, []string{"PGNINJA_POOL_ACQUIRE_TIMEOUT=250ms", "OTHER=1"}, 5, 250 * time.Millisecond},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg, err := Parse([]byte(yaml), tt.overrides, tt.env)
			if err != nil {
				t.Fatal(err)
			}
			if cfg.Pool.MaxSize != tt.wantSize || cfg.Pool.AcquireTimeout != tt.wantWait {
				t.Fatalf("got size %d wait %v", cfg.Pool.MaxSize, cfg.Pool.AcquireTimeout)
			}
		})
	}
}

func TestValidationNamesFields(t *testing.T) {
	tests := []struct {
		name, yaml string
		env        []string
		want       []string
	}{
		{"negative pool", minimal + "pool:\n  max_size: -1\n", nil, []string{"pool.max_size: must be > 0"}},
		{"empty console user", minimal + "stats_users: [ok, \"\"]\n", nil, []string{"stats_users[1]: must be a user name"}},
		{"bad mode and level", minimal + "log_level: loud\npool:\n  mode: bogus\n", nil,
			[]string{"log_level: must be one of", "pool.mode: must be one of"}},
		{"no primary", "backends:\n  - name: r\n    role: replica\n", nil, []string{"backends: need exactly one backend with role primary"}},
		{"unknown field", minimal + "pool:\n  max_sise: 3\n", nil, []string{"field max_sise not found"}},
		{"bad env", minimal, []string{"PGNINJA_POOL_MAX_SIZE=lots"}, []string{"PGNINJA_POOL_MAX_SIZE: pool.max_size: want an integer"}},
		{"negative restart wait", minimal + "pool:\n  restart_wait: -1s\n", nil, []string{"pool.restart_wait: must be >= 0"}},
		{"negative idle and query timeouts", minimal + "pool:\n  idle_transaction_timeout: -1s\n  client_idle_timeout: -1s\n  query_timeout: -1s\n", nil,
			[]string{"pool.idle_transaction_timeout: must be >= 0", "pool.client_idle_timeout: must be >= 0", "pool.query_timeout: must be >= 0"}},
		{"tls half", minimal + "tls:\n  cert_file: a.pem\n", nil, []string{"tls: cert_file and key_file must be set together"}},
		{"short stats period", minimal + "stats_period: 10ms\n", nil, []string{"stats_period: must be >= 1s"}},
		{"negative caps", minimal + "pool:\n  max_db_connections: -1\n  max_user_connections: -2\n", nil,
			[]string{"pool.max_db_connections: must be >= 0", "pool.max_user_connections: must be >= 0"}},
		{"negative cap overrides", minimal + "databases:\n  a: {max_db_connections: -1}\n", nil,
			[]string{"databases.a.max_db_connections: must be >= 0"}},
		{"two caps for one server database", minimal + "databases:\n  a: {max_db_connections: 2}\n  b: {dbname: a, max_db_connections: 3}\n", nil,
			[]string{`databases.b.max_db_connections: differs from databases.a's, which serves the same server database "a"`}},
		{"two caps for one server user", "backends:\n  - {name: primary, port: 15432}\nusers:\n" +
			"  - {name: a, password: x, max_user_connections: 2}\n  - {name: b, password: x, server_user: a, max_user_connections: 3}\n", nil,
			[]string{`users[1].max_user_connections: differs from users[0]'s, which logs in to the servers as the same user "a"`}},
		{"admin_auth for nobody", minimal + "admin_auth: true\n", nil,
			[]string{"admin_auth: needs admin_users or stats_users"}},
		{"bad log_stats", minimal, []string{"PGNINJA_LOG_STATS=maybe"}, []string{"PGNINJA_LOG_STATS: log_stats: want true or false"}},
		{"client CAs without TLS", minimal + "tls:\n  client_ca_file: ca.pem\n", nil,
			[]string{"tls.client_ca_file: needs tls.cert_file and tls.key_file"}},
		{"backend cert without key", minimal + "tls:\n  backend_cert_file: c.pem\n", nil,
			[]string{"tls: backend_cert_file and backend_key_file must be set together"}},
		{"auth.query without its user or $1", minimal + "auth:\n  query: select 'x', 'y'\n  query_user: nobody\n", nil,
			[]string{"auth.query_user: must name one of users", "auth.query: must take the user name as $1"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Parse([]byte(tt.yaml), nil, tt.env)
			if err == nil {
				t.Fatal("want an error")
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not contain %q", err, w)
				}
			}
		})
	}
}

func TestOverrideUnknownKey(t *testing.T) {
	_, err := Parse([]byte(minimal), []string{"pool.nope=1"}, nil)
	if err == nil || !strings.Contains(err.Error(), "pool.nope: no such setting") {
		t.Fatalf("got %v", err)
	}
}

func TestPoolResolution(t *testing.T) {
	cfg, err := Parse([]byte(minimal+"pool:\n  mode: transaction\ndatabases:\n  a:\n    pool_mode: session\n    pool_size: 3\n  b: {}\n"), nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	a, _ := cfg.Database("a")
	b, _ := cfg.Database("b")
	u, _ := cfg.User("ninja")
	if m := cfg.PoolModeFor(a, u); m != PoolSession {
		t.Errorf("db override: %s", m)
	}
	if m := cfg.PoolModeFor(b, u); m != PoolTransaction {
		t.Errorf("global: %s", m)
	}
	u.PoolMode = PoolStatement
	if m := cfg.PoolModeFor(a, u); m != PoolStatement {
		t.Errorf("user override: %s", m)
	}
	if _, ok := cfg.Database("zzz"); ok {
		t.Errorf("unlisted database resolved without a * entry")
	}
	if n := cfg.PoolSizeFor(a, u); n != 3 {
		t.Errorf("size: %d", n)
	}
}

// TestServesDatabase: which server databases some entry leads clients to.
func TestServesDatabase(t *testing.T) {
	cases := []struct {
		databases map[string]Database
		server    string
		want      bool
	}{
		{map[string]Database{"a": {}}, "a", true},
		{map[string]Database{"a": {}}, "b", false},
		{map[string]Database{"a": {DBName: "b"}}, "b", true},
		{map[string]Database{"a": {DBName: "b"}}, "a", false},
		{map[string]Database{"a": {}, "*": {}}, "zzz", true},
		{map[string]Database{"*": {DBName: "b"}}, "zzz", false},
		{map[string]Database{"*": {DBName: "b"}}, "b", true},
		{nil, "a", false},
	}
	for _, c := range cases {
		cfg := &Config{Databases: c.databases}
		if got := cfg.ServesDatabase(c.server); got != c.want {
			t.Errorf("databases %v: ServesDatabase(%q) = %v, want %v", c.databases, c.server, got, c.want)
		}
	}
}

// TestConnectionCapResolution: a cap belongs to a server database or a
// server user, and the entries that reach it name it.
func TestConnectionCapResolution(t *testing.T) {
	cfg, err := Parse([]byte(`
backends:
  - {name: primary, port: 15432}
pool: {max_db_connections: 10, max_user_connections: 20}
databases:
  a: {max_db_connections: 2}
  alias: {dbname: a}
  b: {}
  c: {dbname: served_as_c, max_db_connections: 4}
  "*": {max_db_connections: 5}
users:
  - {name: ninja, password: x, max_user_connections: 3}
  - {name: app, password: x, server_user: ninja}
  - {name: other, password: x}
`), nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct {
		kind, name string
		want       int
	}{
		{"db", "a", 2},
		{"db", "b", 10},           // listed without a cap: the pool section's
		{"db", "served_as_c", 4},  // by its server name
		{"db", "c", 5},            // "c" on the server is reached only through "*"
		{"db", "unlisted", 5},     // "*"
		{"user", "ninja", 3},      // app logs in as ninja too
		{"user", "other", 20},     // no cap of its own
		{"user", "from_file", 20}, // a users-file user
	} {
		got := cfg.MaxUserConnectionsFor(tt.name)
		if tt.kind == "db" {
			got = cfg.MaxDBConnectionsFor(tt.name)
		}
		if got != tt.want {
			t.Errorf("%s %s: cap %d, want %d", tt.kind, tt.name, got, tt.want)
		}
	}
}

// The annotated example must stay a valid config: it documents every
// setting, so a renamed field shows up here.
func TestExampleConfigParses(t *testing.T) {
	cfg, err := Load("../pgninja.example.yaml", nil)
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Primary().Name != "primary" || len(cfg.Backends) != 2 {
		t.Fatalf("unexpected example: %+v", cfg.Backends)
	}
}

// A replica's weight defaults to 1, but an explicit 0 is a setting
// (no reads, as Pgpool-II's backend_weight 0), and a reload comparing
// servers looks past the weight.
func TestReplicaWeight(t *testing.T) {
	backends := func(weight string) string {
		return "backends:\n  - name: primary\n  - name: replica\n    port: 15433\n    role: replica\n" + weight +
			"users:\n  - {name: ninja, password: ninja}\n"
	}
	for _, tc := range []struct {
		name, weight string
		want         int
	}{
		{"absent", "", 1},
		{"zero", "    weight: 0\n", 0},
		{"three", "    weight: 3\n", 3},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg, err := Parse([]byte(backends(tc.weight)), nil, nil)
			if err != nil {
				t.Fatal(err)
			}
			if got := cfg.Backends[1].Weight; got != tc.want {
				t.Errorf("replica weight %d, want %d", got, tc.want)
			}
			if got := cfg.Backends[0].Weight; got != 0 {
				t.Errorf("primary weight %d, want 0", got)
			}
		})
	}
}

// TestLoadResolvesFilesFromTheConfigsDirectory: every relative file path
// the config names is the config file's neighbour, absolute ones stay.
func TestLoadResolvesFilesFromTheConfigsDirectory(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "pgninja.yaml")
	text := minimal + `auth:
  users_file: users.txt
  hba_file: /etc/pgninja/hba.conf
tls:
  cert_file: tls/server.crt
  key_file: tls/server.key
  client_ca_file: clients.pem
  backend_ca_file: ca.pem
  backend_cert_file: /etc/pgninja/client.crt
  backend_key_file: client.key
`
	if err := os.WriteFile(path, []byte(text), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg, err := Load(path, nil)
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		field, got, want string
	}{
		{"auth.users_file", cfg.Auth.UsersFile, filepath.Join(dir, "users.txt")},
		{"auth.hba_file", cfg.Auth.HBAFile, "/etc/pgninja/hba.conf"},
		{"tls.cert_file", cfg.TLS.CertFile, filepath.Join(dir, "tls/server.crt")},
		{"tls.key_file", cfg.TLS.KeyFile, filepath.Join(dir, "tls/server.key")},
		{"tls.client_ca_file", cfg.TLS.ClientCAFile, filepath.Join(dir, "clients.pem")},
		{"tls.backend_ca_file", cfg.TLS.BackendCAFile, filepath.Join(dir, "ca.pem")},
		{"tls.backend_cert_file", cfg.TLS.BackendCertFile, "/etc/pgninja/client.crt"},
		{"tls.backend_key_file", cfg.TLS.BackendKeyFile, filepath.Join(dir, "client.key")},
	} {
		if tc.got != tc.want {
			t.Errorf("%s %q, want %q", tc.field, tc.got, tc.want)
		}
	}
}
