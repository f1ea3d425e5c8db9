package proxy

import (
	"time"

	"github.com/ai-ninja/pgninja/config"
)

// AdminAccess is what the admin HTTP port lets a request with these basic
// auth credentials (has false: none) see: everything while admin_auth is
// off; otherwise what the console would let that user do, once the
// password matches the one the console checks.
func (s *Server) AdminAccess(user, password string, has bool) config.ConsoleAccess {
	st := s.settings.Load()
	if !st.cfg.AdminAuth {
		return config.ConsoleAdmin
	}
	if !has {
		return config.ConsoleNone
	}
	// Every user name is checked alike (see auth.PasswordCheck), so the
	// answer's time does not tell who is an admin or stats user.
	access := st.cfg.ConsoleAccessFor(user)
	_, secret, ok := st.resolveUser(user)
	if !s.adminPasswords.Check(user, password, secret, ok && access != config.ConsoleNone, time.Now()) {
		return config.ConsoleNone
	}
	return access
}
