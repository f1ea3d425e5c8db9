package proxy_test

import (
	"testing"

	"github.com/ai-ninja/pgninja/config"
)

// TestAdminAccessChecksTheConsolePassword: with admin_auth on, the admin
// port lets in admin_users and stats_users members with the password the
// console would take, whatever form it is kept in; off, everyone.
func TestAdminAccessChecksTheConsolePassword(t *testing.T) {
	h := startProxy(t, "admin_auth: true\nadmin_users: [ninja]\nstats_users: [md5user, trusty]\n")
	for _, tt := range []struct {
		name, user, password string
		has                  bool
		want                 config.ConsoleAccess
	}{
		{"no credentials", "", "", false, config.ConsoleNone},
		{"admin", "ninja", "ninja", true, config.ConsoleAdmin},
		{"admin, wrong password", "ninja", "nope", true, config.ConsoleNone},
		{"stats user", "md5user", "ninja", true, config.ConsoleStats},
		{"not a console user", h.env.SuperUser, h.env.SuperPass, true, config.ConsoleNone},
		{"unknown user", "ghost", "ninja", true, config.ConsoleNone},
		// trusty logs in without a password, so has none to give here.
		{"trust user", "trusty", "", true, config.ConsoleNone},
	} {
		if got := h.srv.AdminAccess(tt.user, tt.password, tt.has); got != tt.want {
			t.Errorf("%s: AdminAccess(%q) = %v, want %v", tt.name, tt.user, got, tt.want)
		}
	}
	open := startProxy(t, "")
	if got := open.srv.AdminAccess("", "", false); got != config.ConsoleAdmin {
		t.Errorf("admin_auth off: AdminAccess = %v, want everything", got)
	}
}
