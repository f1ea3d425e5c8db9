package config

import "slices"

// Primary returns the backend configured as primary.
func (c *Config) Primary() Backend {
	for _, b := range c.Backends {
		if b.Role == RolePrimary {
			return b
		}
	}
	return Backend{}
}

// User returns the named user's settings.
func (c *Config) User(name string) (User, bool) {
	for _, u := range c.Users {
		if u.Name == name {
			return u, true
		}
	}
	return User{}, false
}

// Database resolves a client-visible database name, falling back to the
// "*" entry; the returned settings carry the server-side name.
func (c *Config) Database(name string) (Database, bool) {
	d, ok := c.Databases[name]
	if !ok {
		d, ok = c.Databases["*"]
	}
	if !ok {
		return Database{}, false
	}
	if d.DBName == "" {
		d.DBName = name
	}
	return d, true
}

// PoolModeFor resolves the pool mode for a (database, user) pair: the
// user's setting wins over the database's, which wins over pool.mode.
func (c *Config) PoolModeFor(db Database, u User) string {
	switch {
	case u.PoolMode != "":
		return u.PoolMode
	case db.PoolMode != "":
		return db.PoolMode
	}
	return c.Pool.Mode
}

// PoolSizeFor resolves the pool size for a (database, user) pair.
func (c *Config) PoolSizeFor(db Database, u User) int {
	switch {
	case u.PoolSize > 0:
		return u.PoolSize
	case db.PoolSize > 0:
		return db.PoolSize
	}
	return c.Pool.MaxSize
}

// serverName is the database name on the server for the entry name.
func (d Database) serverName(name string) string {
	if d.DBName != "" {
		return d.DBName
	}
	return name
}

// ServerName is the name u logs in to the servers as.
func (u User) ServerName() string {
	if u.ServerUser != "" {
		return u.ServerUser
	}
	return u.Name
}

// MaxDBConnectionsFor is the cap on server connections to the server
// database dbname on each backend: the max_db_connections of the entries
// that name it, or of "*" when none does, else pool.max_db_connections.
func (c *Config) MaxDBConnectionsFor(dbname string) int {
	named := false
	for name, d := range c.Databases {
		if name == "*" || d.serverName(name) != dbname {
			continue
		}
		named = true
		if d.MaxDBConnections > 0 {
			return d.MaxDBConnections
		}
	}
	if d, ok := c.Databases["*"]; ok && !named {
		return c.DatabaseCap(d)
	}
	return c.Pool.MaxDBConnections
}

// DatabaseCap is the max_db_connections of an entry: its own, else
// pool.max_db_connections.
func (c *Config) DatabaseCap(d Database) int {
	if d.MaxDBConnections > 0 {
		return d.MaxDBConnections
	}
	return c.Pool.MaxDBConnections
}

// MaxUserConnectionsFor is the cap on server connections of the server
// user name on each backend: the max_user_connections of the users who
// log in as it, else pool.max_user_connections.
func (c *Config) MaxUserConnectionsFor(name string) int {
	for _, u := range c.Users {
		if u.ServerName() == name && u.MaxUserConnections > 0 {
			return u.MaxUserConnections
		}
	}
	return c.Pool.MaxUserConnections
}

// ConsoleAccess is what a user may do on the admin console.
type ConsoleAccess int

const (
	ConsoleNone  ConsoleAccess = iota
	ConsoleStats               // SHOW commands
	ConsoleAdmin               // everything
)

// ConsoleAccessFor looks the user up in admin_users and stats_users.
func (c *Config) ConsoleAccessFor(user string) ConsoleAccess {
	switch {
	case slices.Contains(c.AdminUsers, user):
		return ConsoleAdmin
	case slices.Contains(c.StatsUsers, user):
		return ConsoleStats
	}
	return ConsoleNone
}

// IsConsole reports whether a client database name reaches the admin
// console: pgninja, or pgbouncer for PgBouncer's tools, unless the
// databases section names a real database so.
func (c *Config) IsConsole(dbName string) bool {
	if dbName != "pgninja" && dbName != "pgbouncer" {
		return false
	}
	_, real := c.Databases[dbName]
	return !real
}

// ServesDatabase reports whether some entry of databases leads clients to
// the server database name: a "*" entry without a dbname leads to any.
func (c *Config) ServesDatabase(name string) bool {
	for key, d := range c.Databases {
		switch {
		case d.DBName != "":
			if d.DBName == name {
				return true
			}
		case key == "*" || key == name:
			return true
		}
	}
	return false
}
