package config

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
