package proxy

import (
	"context"
	"sort"
	"strings"

	"github.com/ai-ninja/pgninja/internal/pgerr"
	"github.com/ai-ninja/pgninja/pool"
	lru "github.com/hashicorp/golang-lru/v2"
)

// settingChecks remembers which startup settings a pool's server has
// accepted. PostgreSQL refuses a login whose startup packet names an
// unknown parameter or an invalid value; pgninja applies startup settings
// later, as statements on whichever server connection the client is
// lent, so it checks them at login instead, once per distinct setting:
// drivers send the same few (application_name, client_encoding,
// DateStyle, extra_float_digits) on every connection.
type settingChecks struct {
	ok *lru.Cache[settingKey, struct{}]
}

// settingKey names one setting accepted on one pool: validity depends on
// the database (extensions define parameters) and on the server user
// (some parameters are for superusers only).
type settingKey struct {
	pool        *pool.Pool
	name, value string
}

// maxSettingChecks bounds the memory of clients that send a new value on
// each connection (an application_name with a pid, say); forgetting only
// costs a check.
const maxSettingChecks = 4096

func newSettingChecks() *settingChecks {
	c, err := lru.New[settingKey, struct{}](maxSettingChecks)
	if err != nil {
		panic(err) // only for a size <= 0
	}
	return &settingChecks{ok: c}
}

// checkStartupSettings refuses the login, as PostgreSQL would, when the
// server rejects one of the client's startup settings, keeping the
// server's SQLSTATE (42704 for an unknown parameter, 22023 for a bad
// value). Settings accepted before cost a map lookup each.
//
// The check runs set_config(name, value, true) for all of them in one
// statement: is_local confines the effect to that statement's own
// transaction, so the connection goes back to the pool untouched. When no
// connection can be had in acquire_timeout, the login goes ahead
// unchecked rather than fail for a busy pool; the settings are still
// applied (and a failure logged) when the client's first request gets a
// connection.
func (s *Session) checkStartupSettings(c *pool.Conn) error {
	var unknown []string
	for name, value := range s.params.startup {
		if !s.srv.settingChecks.ok.Contains(settingKey{s.pool, name, value}) {
			unknown = append(unknown, name)
		}
	}
	if len(unknown) == 0 {
		return nil
	}
	sort.Strings(unknown) // the first bad one named is the same each time
	var sql strings.Builder
	sql.WriteString("SELECT ")
	for i, name := range unknown {
		if i > 0 {
			sql.WriteString(", ")
		}
		sql.WriteString("set_config(" + quoteLiteral(name) + ", " + quoteLiteral(s.params.startup[name]) + ", true)")
	}
	ctx, cancel := context.WithTimeout(context.Background(), s.st.cfg.Pool.AcquireTimeout+s.st.cfg.Pool.ConnectTimeout)
	defer cancel()
	borrowed := c == nil
	if borrowed {
		var err error
		if c, err = s.pool.Acquire(ctx); err != nil {
			// Debug: during an outage every login would say it, and the
			// pool already reports the outage.
			s.srv.log.Debug("cannot check startup settings now; they are applied with the first request",
				"user", s.l.user.Name, "err", err)
			return nil
		}
	}
	err := c.Exec(ctx, sql.String())
	if borrowed {
		s.pool.Release(c, false)
	}
	if err != nil {
		if pgerr.SQLState(err) == "" {
			// The connection failed, not the settings.
			return pgerr.Wrap(err, pgerr.SeverityFatal, pgerr.ConnectionFailure, "pgninja: cannot reach the server")
		}
		return asFatal(err)
	}
	for _, name := range unknown {
		s.srv.settingChecks.ok.Add(settingKey{s.pool, name, s.params.startup[name]}, struct{}{})
	}
	return nil
}
