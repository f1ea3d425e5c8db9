package config

import (
	"time"

	"github.com/ai-ninja/pgninja/internal/libpq"
)

// Pool modes, as PgBouncer names them.
const (
	PoolSession     = "session"
	PoolTransaction = "transaction"
	PoolStatement   = "statement"
)

// Client authentication methods.
const (
	AuthSCRAM = "scram-sha-256"
	AuthMD5   = "md5"
	AuthTrust = "trust"
)

// Backend roles.
const (
	RolePrimary = "primary"
	RoleReplica = "replica"
)

// Config is the whole of pgninja's settings. The zero value is not usable:
// build one with Load or Parse, which fill defaults and validate.
type Config struct {
	// Listen is the TCP address clients connect to.
	Listen string `yaml:"listen"`
	// UnixSocketDir, when set, also serves on DIR/.s.PGSQL.<port>.
	UnixSocketDir string `yaml:"unix_socket_dir"`
	// SOReusePort lets several pgninja processes listen on the same TCP
	// addresses (listen and admin_listen), the kernel spreading new
	// connections among them: a restart without refused connections
	// (start the new one, then SIGTERM the old), as PgBouncer's
	// so_reuseport.
	SOReusePort bool `yaml:"so_reuseport"`
	// AdminListen is the HTTP address of the admin and metrics endpoint.
	AdminListen string `yaml:"admin_listen"`
	// AdminAuth makes every admin HTTP endpoint but /healthz and /readyz
	// ask for HTTP basic auth of an admin_users or stats_users member,
	// with the password the console takes; profiles need admin_users.
	// Off, the port is open to whoever reaches it (loopback by default).
	AdminAuth bool `yaml:"admin_auth"`
	// LogLevel is one of debug, info, warn, error.
	LogLevel string `yaml:"log_level"`
	// LogFormat is text or json.
	LogFormat string `yaml:"log_format"`
	// ShutdownTimeout bounds how long SIGTERM waits for in-flight
	// transactions before connections are closed.
	ShutdownTimeout time.Duration `yaml:"shutdown_timeout"`
	// MaxClientConn caps concurrently connected clients; further ones get
	// SQLSTATE 53300 at startup.
	MaxClientConn int `yaml:"max_client_conn"`
	// MaxMessageSize caps one client message; larger ones are a protocol
	// violation (08P01).
	MaxMessageSize int `yaml:"max_message_size"`
	// Threads caps the OS threads that run the proxy's Go code at once
	// (GOMAXPROCS); 0 picks half the CPUs the process may use, and twice
	// that while clients queue for server connections (see
	// cmd/pgninja/threads.go).
	Threads int `yaml:"threads"`
	// StatsPeriod is how often SHOW STATS' averages are taken, and the
	// stats logged (PgBouncer's stats_period); LogStats logs them
	// (log_stats), one line per database that was busy.
	StatsPeriod time.Duration `yaml:"stats_period"`
	LogStats    *bool         `yaml:"log_stats"`
	// LogConnections and LogDisconnections log each client's login and
	// end (PgBouncer's settings of those names, off here by default: a
	// line per connection costs a connection-per-request workload).
	// Refused logins are logged whatever these say.
	LogConnections    bool `yaml:"log_connections"`
	LogDisconnections bool `yaml:"log_disconnections"`
	// AdminUsers may use the admin console (database pgninja, or
	// pgbouncer as PgBouncer names it) for every command; StatsUsers for
	// its SHOW commands only. Both name users that can log in.
	AdminUsers []string `yaml:"admin_users"`
	StatsUsers []string `yaml:"stats_users"`

	// QueryStats keeps per-statement statistics (SHOW QUERIES).
	QueryStats QueryStats `yaml:"query_stats"`

	TLS       TLS                 `yaml:"tls"`
	Auth      Auth                `yaml:"auth"`
	Pool      Pool                `yaml:"pool"`
	Backends  []Backend           `yaml:"backends"`
	Databases map[string]Database `yaml:"databases"`
	Users     []User              `yaml:"users"`
	Routing   Routing             `yaml:"routing"`
	Sidecar   Sidecar             `yaml:"sidecar"`

	// Path is the file this configuration was read from, if any.
	Path string `yaml:"-"`
}

// QueryStats configures the per-statement statistics: calls, times,
// errors and slow calls by database, user and statement shape (the text
// with its literals replaced by $n), as pg_stat_statements keeps them on
// a server, for what went through this proxy to any of its servers.
type QueryStats struct {
	// Enabled: off by default, since it normalizes each request's SQL
	// (with routing on that is done anyway).
	Enabled bool `yaml:"enabled"`
	// MaxEntries bounds the statements kept; when it is reached, the
	// least called tenth makes room.
	MaxEntries int `yaml:"max_entries"`
	// SlowThreshold: a call that takes longer counts as slow, in SHOW
	// QUERIES and pgninja_slow_queries_total.
	SlowThreshold time.Duration `yaml:"slow_threshold"`
}

// TLS configures the client-facing TLS. Empty cert and key mean the proxy
// answers SSLRequest with 'N'.
type TLS struct {
	CertFile string `yaml:"cert_file"`
	KeyFile  string `yaml:"key_file"`
	// Require refuses clients that do not ask for TLS.
	Require bool `yaml:"require"`
	// ClientCAFile holds the certificate authorities that clients'
	// certificates must chain to (PgBouncer's client_tls_ca_file): a
	// client that presents one is verified against them, and
	// auth.hba_file's cert method and clientcert option can then ask for
	// one.
	ClientCAFile string `yaml:"client_ca_file"`
	// BackendMode is the sslmode pgninja uses towards the servers.
	BackendMode string `yaml:"backend_sslmode"`
	// BackendCAFile holds the certificate authorities that verify the
	// servers (libpq's sslrootcert, PgBouncer's server_tls_ca_file), for
	// backend_sslmode verify-ca and verify-full; empty: the system's.
	BackendCAFile string `yaml:"backend_ca_file"`
	// BackendCertFile and BackendKeyFile are a client certificate for
	// servers that ask for one (sslcert, sslkey; PgBouncer's
	// server_tls_cert_file and server_tls_key_file).
	BackendCertFile string `yaml:"backend_cert_file"`
	BackendKeyFile  string `yaml:"backend_key_file"`
}

// BackendFiles are the TLS files of the proxy's server logins.
func (t TLS) BackendFiles() libpq.SSLFiles {
	return libpq.SSLFiles{RootCert: t.BackendCAFile, Cert: t.BackendCertFile, Key: t.BackendKeyFile}
}

// Auth configures client authentication.
type Auth struct {
	// Type is the default method for users that do not set their own.
	Type string `yaml:"type"`
	// UsersFile holds `"user" "secret"` lines as in PgBouncer's userlist.txt;
	// the secret is a SCRAM verifier, an md5 hash or a plain password.
	UsersFile string `yaml:"users_file"`
	// HBAFile, when set, holds pg_hba.conf-style rules (as PgBouncer's
	// auth_hba_file): the first line matching a client's connection type,
	// database, user and address gives its method, or rejects it; a client
	// no line matches is rejected. Its method wins over Type and the
	// user's own.
	HBAFile string `yaml:"hba_file"`
	// Query, when set, looks up a user that neither the config nor the
	// users file knows (PgBouncer's auth_query): run with the user's name
	// as $1, its first row's second column is the password (a SCRAM
	// verifier, an md5 hash or plain), NULL for none. It runs on the
	// primary as QueryUser (a config user, with its server credentials),
	// in QueryDatabase or, when empty, the server database the client's
	// database entry leads to.
	Query         string `yaml:"query"`
	QueryUser     string `yaml:"query_user"`
	QueryDatabase string `yaml:"query_database"`
}

// Pool holds the defaults for every server connection pool. Databases and
// users may override the mode and size.
type Pool struct {
	Mode string `yaml:"mode"`
	// MinSize connections are kept open per pool.
	MinSize int `yaml:"min_size"`
	// MaxSize caps server connections per (backend, database, user).
	MaxSize int `yaml:"max_size"`
	// MaxDBConnections and MaxUserConnections cap the server connections
	// of all pools of one server database, or of one server user, on one
	// backend (PgBouncer's max_db_connections and max_user_connections);
	// 0 means no cap. A pool at a cap closes another's idle connection to
	// make room, or waits as for a full pool.
	MaxDBConnections   int `yaml:"max_db_connections"`
	MaxUserConnections int `yaml:"max_user_connections"`
	// ReserveSize extra connections may be opened for a client that has
	// waited ReserveTimeout.
	ReserveSize    int           `yaml:"reserve_size"`
	ReserveTimeout time.Duration `yaml:"reserve_timeout"`
	// AcquireTimeout is how long a client waits for a server connection
	// before it gets SQLSTATE 53300 (PgBouncer's query_wait_timeout).
	AcquireTimeout time.Duration `yaml:"acquire_timeout"`
	// RestartWait is how long requests wait for a server that refuses
	// connections as a restarting one does (57P03, nothing listening),
	// counted from its first refusal; then they fail at once with its
	// error until it takes connections again. 0 fails them at once.
	RestartWait time.Duration `yaml:"restart_wait"`
	// ConnectTimeout bounds opening one server connection.
	ConnectTimeout time.Duration `yaml:"connect_timeout"`
	// IdleTimeout closes server connections unused for this long.
	IdleTimeout time.Duration `yaml:"idle_timeout"`
	// MaxLifetime recycles server connections older than this.
	MaxLifetime time.Duration `yaml:"max_lifetime"`
	// HealthCheckAfter: a connection idle longer than this is checked
	// before it is handed out.
	HealthCheckAfter time.Duration `yaml:"health_check_after"`
	// ResetQuery runs when a connection is returned to the pool after a
	// session; empty disables it.
	ResetQuery string `yaml:"reset_query"`
	// IdleTransactionTimeout ends a client idle inside a transaction.
	IdleTransactionTimeout time.Duration `yaml:"idle_transaction_timeout"`
	// ClientIdleTimeout ends a client idle outside a transaction
	// (PgBouncer's client_idle_timeout).
	ClientIdleTimeout time.Duration `yaml:"client_idle_timeout"`
	// QueryTimeout cancels a request the server has not answered within
	// it, closes that server connection and ends the client (PgBouncer's
	// query_timeout): a safety net for a server that stops answering
	// without closing, set somewhat above statement_timeout.
	QueryTimeout time.Duration `yaml:"query_timeout"`
	// MaxPreparedStatements bounds the prepared statements the proxy keeps
	// on each server connection in transaction mode; the least recently
	// used are closed beyond it.
	MaxPreparedStatements int `yaml:"max_prepared_statements"`
}

// Routing configures read/write splitting. With it off (or no replica
// configured) everything goes to the primary.
type Routing struct {
	Enabled bool `yaml:"enabled"`
	// Consistency is read_your_writes (a client's reads wait for replicas
	// that have its own commits), table (also every client's writes to the
	// tables read) or eventual.
	Consistency string `yaml:"consistency"`
	// MaxReplicaLagBytes and MaxReplicaLag take a lagging replica out of
	// rotation; 0 means no limit.
	MaxReplicaLagBytes   int64   `yaml:"max_replica_lag_bytes"`
	MaxReplicaLagSeconds float64 `yaml:"max_replica_lag_seconds"`
	// HealthCheckInterval is how often roles and health are checked.
	HealthCheckInterval time.Duration `yaml:"health_check_interval"`
	// LSNPollInterval is how often replica replay positions are read.
	LSNPollInterval time.Duration `yaml:"lsn_poll_interval"`
	// HealthCheckUser and HealthCheckPassword log the checker in; empty
	// means the first configured user.
	HealthCheckUser     string `yaml:"health_check_user"`
	HealthCheckPassword string `yaml:"health_check_password"`
	// HealthCheckDatabase is the database the checker connects to.
	HealthCheckDatabase string `yaml:"health_check_database"`
}

// Backend is one PostgreSQL server.
type Backend struct {
	Name string `yaml:"name"`
	Host string `yaml:"host"`
	Port int    `yaml:"port"`
	// Role is primary or replica; health checks may discover otherwise.
	Role string `yaml:"role"`
	// Weight is this backend's share of routed reads.
	Weight int `yaml:"weight"`
	// weightSet: the file gave a weight, so a replica's 0 (no reads, as
	// Pgpool-II's backend_weight 0) is meant, not a default to fill.
	weightSet bool
}

// Database maps a client-visible database name onto the servers. The key
// "*" matches any database name not listed.
type Database struct {
	// DBName is the name on the server; empty means the same as the key.
	DBName   string `yaml:"dbname"`
	PoolMode string `yaml:"pool_mode"`
	PoolSize int    `yaml:"pool_size"`
	// MaxDBConnections overrides pool.max_db_connections for the server
	// database this entry serves (PgBouncer's per-database
	// max_db_connections).
	MaxDBConnections int `yaml:"max_db_connections"`
}

// User is a client login.
type User struct {
	Name string `yaml:"name"`
	// Auth overrides auth.type for this user.
	Auth string `yaml:"auth"`
	// Password is the plain password used both to check the client (when the
	// users file has no secret for it) and to log in to the servers.
	Password string `yaml:"password"`
	// ServerUser and ServerPassword, when set, are used towards the servers
	// instead of the client's own name and password.
	ServerUser     string `yaml:"server_user"`
	ServerPassword string `yaml:"server_password"`
	PoolMode       string `yaml:"pool_mode"`
	PoolSize       int    `yaml:"pool_size"`
	// MaxUserConnections overrides pool.max_user_connections for the
	// server user this user logs in as (PgBouncer's per-user
	// max_user_connections).
	MaxUserConnections int `yaml:"max_user_connections"`
}
