package pgtool

import (
	"context"
	"fmt"
	"net/url"
	"regexp"
	"strconv"
	"strings"

	"github.com/ai-ninja/pgninja/internal/libpq"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
)

// Target is one database on one server, with the credentials to use.
type Target struct {
	Host     string
	Port     int
	User     string
	Password string
	Database string
	// SSLMode is libpq's sslmode; empty means prefer. SSLFiles are the
	// files its TLS uses.
	SSLMode  string
	SSLFiles libpq.SSLFiles
}

var kvSSLMode = regexp.MustCompile(`(?:^|\s)sslmode\s*=\s*'?([a-z-]+)`)

// ParseDSN reads a URL (postgres://...) or key=value connection string.
func ParseDSN(dsn string) (Target, error) {
	c, err := pgconn.ParseConfig(dsn)
	if err != nil {
		return Target{}, err
	}
	t := Target{Host: c.Host, Port: int(c.Port), User: c.User, Password: c.Password, Database: c.Database}
	if u, err := url.Parse(dsn); err == nil && (u.Scheme == "postgres" || u.Scheme == "postgresql") {
		t.SSLMode = u.Query().Get("sslmode")
	} else if m := kvSSLMode.FindStringSubmatch(dsn); m != nil {
		t.SSLMode = m[1]
	}
	return t, nil
}

// WithDatabase returns the same server and credentials for another
// database.
func (t Target) WithDatabase(db string) Target {
	t.Database = db
	return t
}

// String names the target without its password.
func (t Target) String() string {
	return fmt.Sprintf("%s@%s:%d/%s", t.User, t.Host, t.Port, t.Database)
}

// ConnInfo is the key=value connection string without the password: safe
// to pass on a command line, where every user of the machine can read it.
func (t Target) ConnInfo() string {
	parts := []string{
		"host=" + libpq.Quote(t.Host),
		"port=" + strconv.Itoa(t.Port),
		"user=" + libpq.Quote(t.User),
		"dbname=" + libpq.Quote(t.Database),
	}
	if t.SSLMode != "" {
		parts = append(parts, "sslmode="+t.SSLMode)
	}
	return strings.Join(parts, " ") + t.SSLFiles.Params()
}

// ToolEnv is the environment for a libpq tool (pg_dump, pg_restore)
// connecting to t: the password travels in PGPASSWORD, not in argv.
func (t Target) ToolEnv(base []string) []string {
	env := make([]string, 0, len(base)+1)
	for _, kv := range base {
		if !strings.HasPrefix(kv, "PGPASSWORD=") {
			env = append(env, kv)
		}
	}
	if t.Password != "" {
		env = append(env, "PGPASSWORD="+t.Password)
	}
	return env
}

// stableParams make row text (and so content checksums) independent of
// the server's and the user's settings.
var stableParams = map[string]string{
	"TimeZone":           "UTC",
	"DateStyle":          "ISO, MDY",
	"IntervalStyle":      "postgres",
	"extra_float_digits": "3",
	"bytea_output":       "hex",
	"application_name":   "pgninja-sidecar",
}

// Connect opens one connection with stable output settings.
func Connect(ctx context.Context, t Target) (*pgx.Conn, error) {
	cfg, err := pgx.ParseConfig(t.ConnInfo())
	if err != nil {
		return nil, err
	}
	cfg.Password = t.Password
	for k, v := range stableParams {
		cfg.RuntimeParams[k] = v
	}
	conn, err := pgx.ConnectConfig(ctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("connect %s: %w", t, err)
	}
	return conn, nil
}

// ServerMajor returns the server's major version, e.g. 15.
func ServerMajor(conn *pgx.Conn) int {
	v := conn.PgConn().ParameterStatus("server_version")
	n, _ := strconv.Atoi(strings.SplitN(strings.TrimSpace(v), ".", 2)[0])
	return n
}
