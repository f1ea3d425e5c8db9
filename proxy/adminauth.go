package proxy

import "github.com/ai-ninja/pgninja/config"

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
	access := st.cfg.ConsoleAccessFor(user)
	if access == config.ConsoleNone {
		return access
	}
	if _, secret, ok := st.resolveUser(user); !ok || !secret.Matches(user, password) {
		return config.ConsoleNone
	}
	return access
}
