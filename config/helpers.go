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
