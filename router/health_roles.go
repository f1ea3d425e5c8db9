package router

import (
	"fmt"
	"time"
)

// backendObservation is one backend's latest answer to the health query.
// The zero value is a backend not heard from yet: unhealthy.
type backendObservation struct {
	up         bool      // connected and answered
	err        error     // why not, when !up
	at         time.Time // when the query was sent (or the check failed)
	inRecovery bool
	// lsn is the replay position of a server in recovery, else its WAL
	// flush position (see healthQuery).
	lsn LSN
	// lag is the replay delay of a server in recovery, 0 when caught up
	// (see backendProbe.replayLag).
	lag time.Duration
	// noRef: no primary position was known when lag was measured (the
	// first check), so lag is the raw age of the last replayed commit.
	noRef bool
}

// roleLimits are the inputs to decideRoles besides the observations.
type roleLimits struct {
	maxLagBytes int64         // 0: no limit
	maxLag      time.Duration // 0: no limit
	// pruned is the highest LSN passed to LSNTracker.Prune. A replica
	// below it may be missing writes the tracker no longer remembers, so
	// it must not (re)join rotation until it passes it.
	pruned LSN
}

// decideRoles turns observations (one per target, same order) into the
// backend states the router reads, and says why each unhealthy one is.
// It is pure so the role rules can be tested without promoting anything.
//
// The primary is, in order of preference:
//  1. prev, the server chosen last time, while it stays writable. After
//     a failover an old primary that comes back unfenced (up, not in
//     recovery) must not get writes back: that would split the data
//     across two timelines.
//  2. a configured primary that is up and not in recovery;
//  3. a configured replica that is up and not in recovery (promoted).
//
// If none qualifies there is no primary and writes fail (ErrNoPrimary)
// rather than reach a server in recovery. A server that is writable but
// not chosen keeps Healthy (it answers) but, not being in recovery, takes
// no reads either. Servers in recovery other than the primary are
// replicas, including a demoted primary (with its configured weight).
func decideRoles(targets []HealthTarget, obs []backendObservation, prev string, lim roleLimits) ([]ReplicaState, []string) {
	states := make([]ReplicaState, len(targets))
	why := make([]string, len(targets))
	primary := choosePrimary(targets, obs, prev)
	for i, t := range targets {
		o := obs[i]
		st := ReplicaState{Name: t.Name, Weight: t.Weight, CheckedAt: o.at}
		states[i] = st
		if !o.up {
			why[i] = "not checked yet"
			if o.err != nil {
				why[i] = o.err.Error()
			}
			continue
		}
		st.Healthy = true
		st.InRecovery = o.inRecovery
		st.ReplayLSN = o.lsn
		switch {
		case i == primary:
			st.Primary = true
		case !o.inRecovery:
			why[i] = "writable but not the chosen primary: takes no reads or writes"
		default:
			if primary >= 0 && obs[primary].lsn > o.lsn {
				st.LagBytes = int64(obs[primary].lsn - o.lsn)
			}
			st.Lag = o.lag
			if o.noRef && primary >= 0 && st.LagBytes == 0 {
				// Caught up with the primary's sample: the age of the
				// last replayed commit is idle time, not lag.
				st.Lag = 0
			}
			switch {
			case lim.maxLagBytes > 0 && st.LagBytes > lim.maxLagBytes:
				st.Healthy = false
				why[i] = fmt.Sprintf("lags %d bytes, limit %d", st.LagBytes, lim.maxLagBytes)
			case lim.maxLag > 0 && st.Lag > lim.maxLag:
				st.Healthy = false
				why[i] = fmt.Sprintf("lags %s, limit %s", st.Lag, lim.maxLag)
			case o.lsn < lim.pruned && (primary < 0 || obs[primary].lsn >= lim.pruned):
				// (A primary below it means the cluster was rebuilt and
				// the old positions mean nothing.)
				st.Healthy = false
				why[i] = fmt.Sprintf("replayed %s, below the pruned read-your-writes position %s", o.lsn, lim.pruned)
			}
		}
		states[i] = st
	}
	return states, why
}

// choosePrimary returns the index of the writable primary, or -1.
func choosePrimary(targets []HealthTarget, obs []backendObservation, prev string) int {
	writable := func(i int) bool { return obs[i].up && !obs[i].inRecovery }
	for i, t := range targets {
		if t.Name == prev && prev != "" && writable(i) {
			return i
		}
	}
	for _, configuredPrimary := range []bool{true, false} {
		for i, t := range targets {
			if t.Primary == configuredPrimary && writable(i) {
				return i
			}
		}
	}
	return -1
}
