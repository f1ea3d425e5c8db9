package router

import "time"

// BackendView is one server as the admin HTTP surface shows it.
type BackendView struct {
	Name       string    `json:"name"`
	Role       string    `json:"role"` // primary (takes writes) or replica
	Healthy    bool      `json:"healthy"`
	InRecovery bool      `json:"in_recovery"`
	ReplayLSN  LSN       `json:"replay_lsn"`
	LagBytes   int64     `json:"lag_bytes"`
	LagSeconds float64   `json:"lag_seconds"`
	Weight     int       `json:"weight"`
	CheckedAt  time.Time `json:"checked_at,omitzero"`
}

// View lists the backends as the health checks last saw them, in
// configuration order.
func (r *Router) View() []BackendView {
	states := r.backends.Snapshot().States()
	out := make([]BackendView, 0, len(states))
	for _, st := range states {
		role := "replica"
		if st.Primary {
			role = "primary"
		}
		out = append(out, BackendView{Name: st.Name, Role: role, Healthy: st.Healthy, InRecovery: st.InRecovery,
			ReplayLSN: st.ReplayLSN, LagBytes: st.LagBytes, LagSeconds: st.Lag.Seconds(), Weight: st.Weight, CheckedAt: st.CheckedAt})
	}
	return out
}
