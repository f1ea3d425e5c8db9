package config

import (
	"errors"
	"fmt"
	"net"
	"slices"
	"strings"
	"time"
)

// FieldError is one problem with one setting, named by its dotted path.
type FieldError struct {
	Field string
	Msg   string
}

func (e *FieldError) Error() string { return e.Field + ": " + e.Msg }

// problems collects every FieldError so that one run reports them all.
type problems []error

func (p *problems) add(field, format string, args ...any) {
	*p = append(*p, &FieldError{Field: field, Msg: fmt.Sprintf(format, args...)})
}

// Validate checks the whole configuration and returns all problems joined.
func (c *Config) Validate() error {
	var p problems
	checkAddr(&p, "listen", c.Listen)
	checkAddr(&p, "admin_listen", c.AdminListen)
	oneOf(&p, "log_level", c.LogLevel, "debug", "info", "warn", "error")
	oneOf(&p, "log_format", c.LogFormat, "text", "json")
	positive(&p, "max_client_conn", c.MaxClientConn)
	positive(&p, "query_stats.max_entries", c.QueryStats.MaxEntries)
	if c.QueryStats.SlowThreshold <= 0 {
		p.add("query_stats.slow_threshold", "must be > 0")
	}
	if c.StatsPeriod < time.Second {
		p.add("stats_period", "must be >= 1s")
	}
	if c.Threads < 0 {
		p.add("threads", "must be >= 0 (0: half the CPUs)")
	}
	if c.MaxMessageSize < 1<<16 {
		p.add("max_message_size", "must be >= 65536")
	}
	if (c.TLS.CertFile == "") != (c.TLS.KeyFile == "") {
		p.add("tls", "cert_file and key_file must be set together")
	}
	if (c.TLS.BackendCertFile == "") != (c.TLS.BackendKeyFile == "") {
		p.add("tls", "backend_cert_file and backend_key_file must be set together")
	}
	if c.TLS.ClientCAFile != "" && c.TLS.CertFile == "" {
		p.add("tls.client_ca_file", "needs tls.cert_file and tls.key_file")
	}
	if c.TLS.Require && c.TLS.CertFile == "" {
		p.add("tls.require", "needs tls.cert_file and tls.key_file")
	}
	oneOf(&p, "tls.backend_sslmode", c.TLS.BackendMode, "disable", "allow", "prefer", "require", "verify-ca", "verify-full")
	oneOf(&p, "auth.type", c.Auth.Type, AuthSCRAM, AuthMD5, AuthTrust)
	if c.Auth.Query != "" {
		if _, ok := c.User(c.Auth.QueryUser); !ok {
			p.add("auth.query_user", "must name one of users, whose server credentials run auth.query")
		}
		if !strings.Contains(c.Auth.Query, "$1") {
			p.add("auth.query", "must take the user name as $1")
		}
	}
	c.Pool.validate(&p)

	primaries := 0
	names := map[string]bool{}
	for i, b := range c.Backends {
		f := fmt.Sprintf("backends[%d]", i)
		if b.Name == "" {
			p.add(f+".name", "must be set")
		} else if names[b.Name] {
			p.add(f+".name", "duplicate backend %q", b.Name)
		}
		names[b.Name] = true
		if b.Port <= 0 || b.Port > 65535 {
			p.add(f+".port", "must be in 1..65535")
		}
		oneOf(&p, f+".role", b.Role, RolePrimary, RoleReplica)
		if b.Role == RolePrimary {
			primaries++
		}
		if b.Weight < 0 {
			p.add(f+".weight", "must be >= 0")
		}
	}
	if primaries != 1 {
		p.add("backends", "need exactly one backend with role primary, have %d", primaries)
	}
	for name, d := range c.Databases {
		f := "databases." + name
		if d.PoolMode != "" {
			oneOf(&p, f+".pool_mode", d.PoolMode, PoolSession, PoolTransaction, PoolStatement)
		}
		if d.PoolSize < 0 {
			p.add(f+".pool_size", "must be >= 0")
		}
		if d.MaxDBConnections < 0 {
			p.add(f+".max_db_connections", "must be >= 0 (0: pool.max_db_connections)")
		}
	}
	c.validateCapOverrides(&p)
	users := map[string]bool{}
	for i, u := range c.Users {
		f := fmt.Sprintf("users[%d]", i)
		if u.Name == "" {
			p.add(f+".name", "must be set")
		} else if users[u.Name] {
			p.add(f+".name", "duplicate user %q", u.Name)
		}
		users[u.Name] = true
		if u.Auth != "" {
			oneOf(&p, f+".auth", u.Auth, AuthSCRAM, AuthMD5, AuthTrust)
		}
		if u.PoolMode != "" {
			oneOf(&p, f+".pool_mode", u.PoolMode, PoolSession, PoolTransaction, PoolStatement)
		}
		if u.PoolSize < 0 {
			p.add(f+".pool_size", "must be >= 0")
		}
		if u.MaxUserConnections < 0 {
			p.add(f+".max_user_connections", "must be >= 0 (0: pool.max_user_connections)")
		}
	}
	for field, names := range map[string][]string{"admin_users": c.AdminUsers, "stats_users": c.StatsUsers} {
		for i, name := range names {
			if name == "" {
				p.add(fmt.Sprintf("%s[%d]", field, i), "must be a user name")
			}
		}
	}
	if c.AdminAuth && len(c.AdminUsers)+len(c.StatsUsers) == 0 {
		p.add("admin_auth", "needs admin_users or stats_users: nobody could read the admin port")
	}
	oneOf(&p, "routing.consistency", c.Routing.Consistency, "read_your_writes", "table", "eventual")
	if c.Routing.MaxReplicaLagBytes < 0 {
		p.add("routing.max_replica_lag_bytes", "must be >= 0")
	}
	if c.Routing.MaxReplicaLagSeconds < 0 {
		p.add("routing.max_replica_lag_seconds", "must be >= 0")
	}
	if c.Routing.HealthCheckInterval <= 0 || c.Routing.LSNPollInterval <= 0 {
		p.add("routing", "health_check_interval and lsn_poll_interval must be > 0")
	}
	c.Sidecar.validate(&p)
	return errors.Join(p...)
}

// validateCapOverrides refuses two caps for one server database or one
// server user: the cap belongs to what the servers see, so entries that
// reach the same one must agree on it.
func (c *Config) validateCapOverrides(p *problems) {
	dbs := map[string]string{}
	names := make([]string, 0, len(c.Databases))
	for name := range c.Databases {
		names = append(names, name)
	}
	slices.Sort(names)
	for _, name := range names {
		d := c.Databases[name]
		if name == "*" || d.MaxDBConnections <= 0 {
			continue
		}
		server := d.serverName(name)
		if other, ok := dbs[server]; ok && c.Databases[other].MaxDBConnections != d.MaxDBConnections {
			p.add("databases."+name+".max_db_connections", "differs from databases.%s's, which serves the same server database %q", other, server)
		}
		dbs[server] = name
	}
	users := map[string]int{}
	for i, u := range c.Users {
		if u.MaxUserConnections <= 0 {
			continue
		}
		server := u.ServerName()
		if j, ok := users[server]; ok && c.Users[j].MaxUserConnections != u.MaxUserConnections {
			p.add(fmt.Sprintf("users[%d].max_user_connections", i), "differs from users[%d]'s, which logs in to the servers as the same user %q", j, server)
		}
		users[server] = i
	}
}

func (pc *Pool) validate(p *problems) {
	oneOf(p, "pool.mode", pc.Mode, PoolSession, PoolTransaction, PoolStatement)
	positive(p, "pool.max_size", pc.MaxSize)
	if pc.MinSize < 0 || pc.MinSize > pc.MaxSize {
		p.add("pool.min_size", "must be in 0..pool.max_size")
	}
	if pc.ReserveSize < 0 {
		p.add("pool.reserve_size", "must be >= 0")
	}
	if pc.MaxDBConnections < 0 {
		p.add("pool.max_db_connections", "must be >= 0 (0: no cap)")
	}
	if pc.MaxUserConnections < 0 {
		p.add("pool.max_user_connections", "must be >= 0 (0: no cap)")
	}
	for _, d := range []struct {
		name string
		val  int64
	}{
		{"pool.acquire_timeout", int64(pc.AcquireTimeout)},
		{"pool.connect_timeout", int64(pc.ConnectTimeout)},
		{"pool.idle_timeout", int64(pc.IdleTimeout)},
		{"pool.max_lifetime", int64(pc.MaxLifetime)},
		{"pool.health_check_after", int64(pc.HealthCheckAfter)},
		{"pool.reserve_timeout", int64(pc.ReserveTimeout)},
	} {
		if d.val <= 0 {
			p.add(d.name, "must be > 0")
		}
	}
	positive(p, "pool.max_prepared_statements", pc.MaxPreparedStatements)
	if pc.RestartWait < 0 {
		p.add("pool.restart_wait", "must be >= 0")
	}
	if pc.IdleTransactionTimeout < 0 {
		p.add("pool.idle_transaction_timeout", "must be >= 0")
	}
	if pc.ClientIdleTimeout < 0 {
		p.add("pool.client_idle_timeout", "must be >= 0")
	}
	if pc.QueryTimeout < 0 {
		p.add("pool.query_timeout", "must be >= 0")
	}
}

func checkAddr(p *problems, field, addr string) {
	if _, _, err := net.SplitHostPort(addr); err != nil {
		p.add(field, "must be host:port: %v", err)
	}
}

func oneOf(p *problems, field, val string, allowed ...string) {
	for _, a := range allowed {
		if val == a {
			return
		}
	}
	p.add(field, "must be one of %s, not %q", strings.Join(allowed, ", "), val)
}

func positive(p *problems, field string, v int) {
	if v <= 0 {
		p.add(field, "must be > 0")
	}
}
