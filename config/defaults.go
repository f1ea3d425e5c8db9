package config

import "time"

// presetDefaults sets, before decoding, the defaults whose zero is a
// setting of its own, so that a file saying 0 keeps it.
func (c *Config) presetDefaults() {
	c.Pool.RestartWait = 30 * time.Second
}

func (c *Config) fillDefaults() {
	def := func(s *string, v string) {
		if *s == "" {
			*s = v
		}
	}
	defInt := func(p *int, v int) {
		if *p == 0 {
			*p = v
		}
	}
	defDur := func(p *time.Duration, v time.Duration) {
		if *p == 0 {
			*p = v
		}
	}
	def(&c.Listen, "127.0.0.1:6432")
	def(&c.AdminListen, "127.0.0.1:9432")
	def(&c.LogLevel, "info")
	def(&c.LogFormat, "text")
	defDur(&c.ShutdownTimeout, 30*time.Second)
	defInt(&c.MaxClientConn, 10000)
	defDur(&c.StatsPeriod, time.Minute)
	defInt(&c.QueryStats.MaxEntries, 5000)
	// The seed's warning threshold for the average query time.
	defDur(&c.QueryStats.SlowThreshold, time.Second)
	if c.LogStats == nil {
		on := true
		c.LogStats = &on
	}
	defInt(&c.MaxMessageSize, 256<<20)
	def(&c.TLS.BackendMode, "prefer")
	def(&c.Auth.Type, AuthSCRAM)

	p := &c.Pool
	def(&p.Mode, PoolSession)
	defInt(&p.MaxSize, 20)
	defDur(&p.ReserveTimeout, 5*time.Second)
	defDur(&p.AcquireTimeout, 120*time.Second)
	defDur(&p.ConnectTimeout, 15*time.Second)
	defDur(&p.IdleTimeout, 10*time.Minute)
	defDur(&p.MaxLifetime, time.Hour)
	defDur(&p.HealthCheckAfter, 30*time.Second)
	defInt(&p.MaxPreparedStatements, 200)
	if p.ResetQuery == "" {
		p.ResetQuery = "DISCARD ALL"
	} else if p.ResetQuery == "none" {
		p.ResetQuery = ""
	}

	for i := range c.Backends {
		b := &c.Backends[i]
		def(&b.Host, "127.0.0.1")
		defInt(&b.Port, 5432)
		def(&b.Role, RolePrimary)
		if b.Weight == 0 && b.Role == RoleReplica && !b.weightSet {
			b.Weight = 1
		}
	}
	r := &c.Routing
	def(&r.Consistency, "read_your_writes")
	defDur(&r.HealthCheckInterval, time.Second)
	defDur(&r.LSNPollInterval, 100*time.Millisecond)
	def(&r.HealthCheckDatabase, "postgres")
	if len(c.Databases) == 0 {
		c.Databases = map[string]Database{"*": {}}
	}
	c.Sidecar.fillDefaults()
}

// Defaults is the configuration an empty file gives, before validation
// (which an empty file fails: it names no backend): what SHOW CONFIG
// reports as each setting's default.
func Defaults() *Config {
	c := &Config{}
	c.presetDefaults()
	c.fillDefaults()
	return c
}
