package proxy

import (
	"errors"
	"maps"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/ai-ninja/pgninja/internal/pgerr"
	"github.com/ai-ninja/pgninja/internal/wire"
	"github.com/jackc/pgx/v5/pgproto3"
)

// The console's commands that end or hold clients, PgBouncer's: KILL,
// KILL_CLIENT, DISABLE, ENABLE, WAIT_CLOSE and SHUTDOWN. PAUSE and RESUME
// are in pause.go.

// errKilled is what a client ended by KILL or KILL_CLIENT is told.
func errKilled(verb string) error {
	return pgerr.Fatal(pgerr.AdminShutdown, "terminating connection due to administrator command (%s on the admin console)", verb)
}

// consoleKill runs KILL [db]: every client of db (of every database for
// "") is ended now, a request in flight cancelled, and the server
// connections closed; db stays paused, so new clients wait for RESUME, as
// in PgBouncer.
func (s *Session) consoleKill(db string) {
	// Already paused is fine: it stays so, and its pools stay held.
	if s.srv.pauses.pause(db) {
		s.srv.pauses.hold(db, s.srv.poolsOf(db))
	}
	// At once for all: a client that reads nothing takes up to
	// killWriteTimeout.
	var wg sync.WaitGroup
	for _, sess := range s.srv.sessionList() {
		v, ok := sess.view()
		if ok && !v.console && (db == "" || v.db == db) {
			wg.Go(func() { sess.terminate(errKilled("KILL")) })
		}
	}
	wg.Wait()
	for _, kp := range s.srv.poolsOf(db) {
		kp.p.Retire()
	}
}

// consoleKillClient runs KILL_CLIENT pid: the one client SHOW CLIENTS
// lists with that pid (the process ID the proxy gave it) is ended.
func (s *Session) consoleKillClient(args []string) error {
	if len(args) != 1 {
		return pgerr.New(pgerr.SyntaxError, "KILL_CLIENT takes a client's pid, from SHOW CLIENTS")
	}
	pid, err := strconv.ParseUint(args[0], 10, 32)
	if err != nil {
		return pgerr.New(pgerr.InvalidParameterValue, "KILL_CLIENT: %q is not a pid", args[0])
	}
	for _, sess := range s.srv.sessionList() {
		v, ok := sess.view()
		if ok && !v.console && v.keyPID == uint32(pid) {
			sess.terminate(errKilled("KILL_CLIENT"))
			return nil
		}
	}
	return pgerr.New(pgerr.UndefinedObject, "no client has pid %d", pid)
}

// terminate ends the session now. The client hears why first. A server
// connection still running its request is then abandoned (closed and its
// query cancelled) rather than left to finish for nobody; draining keeps
// the relay from running the request again elsewhere.
func (s *Session) terminate(err error) {
	s.mu.Lock()
	s.draining = true
	s.mu.Unlock()
	s.kill(err)
	s.mu.Lock()
	defer s.mu.Unlock()
	if c := s.lease; c != nil && (len(s.pending) > 0 || s.openBatch) {
		s.abandon(c, "KILL")
	}
}

// disabled are the client databases DISABLE closed to new logins.
type disabled struct {
	on atomic.Bool // any: the one check a login pays
	mu sync.Mutex
	by map[string]bool
}

func (d *disabled) set(db string, off bool) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if off {
		if d.by == nil {
			d.by = map[string]bool{}
		}
		d.by[db] = true
	} else {
		delete(d.by, db)
	}
	d.on.Store(len(d.by) > 0)
}

func (d *disabled) has(db string) bool {
	if !d.on.Load() {
		return false
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.by[db]
}

// names are the databases disabled.
func (d *disabled) names() []string {
	d.mu.Lock()
	defer d.mu.Unlock()
	return slices.Collect(maps.Keys(d.by))
}

// errDisabled refuses a login to a database DISABLE closed, in
// PostgreSQL's words for a database that takes no connections.
func errDisabled(db string) error {
	return pgerr.Fatal(pgerr.ObjectNotInPrerequisiteState, "database %q is not currently accepting connections", db).
		WithDetail("DISABLE on the admin console; ENABLE lets clients in again.")
}

// consoleWaitClose runs WAIT_CLOSE [db]: it returns once no server
// connection that RECONNECT, KILL or a RELOAD retired is still open (lent
// to a client that has not given it back yet). A cancel ends the wait.
func (s *Session) consoleWaitClose(db string) error {
	ctx := s.beginWait(time.Now())
	err := s.pollUntil(ctx, func() bool {
		for _, kp := range s.srv.poolsOf(db) {
			if kp.p.Retiring() > 0 {
				return false
			}
		}
		return true
	})
	s.mu.Lock()
	s.endWait()
	s.mu.Unlock()
	if errors.Is(err, errWaitCancelled) {
		return pgerr.New(pgerr.QueryCanceled, "canceling WAIT_CLOSE due to user request")
	}
	return err
}

// consoleControl runs the commands of this file; ok is false for a verb
// that is none of them.
func (s *Session) consoleControl(verb string, args []string) (out []wire.Encoder, ok bool, err error) {
	switch verb {
	case "KILL", "KILL_CLIENT", "DISABLE", "ENABLE", "WAIT_CLOSE", "SHUTDOWN", "SUSPEND":
	default:
		return nil, false, nil
	}
	if err := s.consoleAdminOnly(verb); err != nil {
		return nil, true, err
	}
	done := []wire.Encoder{&pgproto3.CommandComplete{CommandTag: []byte(verb)}}
	switch verb {
	case "KILL_CLIENT":
		return done, true, s.consoleKillClient(args)
	case "SHUTDOWN":
		if len(args) != 0 {
			return nil, true, pgerr.New(pgerr.SyntaxError, "SHUTDOWN takes no arguments")
		}
		if s.srv.shutdown == nil {
			return nil, true, pgerr.New(pgerr.FeatureNotSupported, "this pgninja cannot be shut down from its console")
		}
		// After the answer has gone out: shutdown ends this session too.
		s.consoleThen = s.srv.shutdown
		return done, true, nil
	case "SUSPEND":
		return nil, true, pgerr.New(pgerr.FeatureNotSupported,
			"SUSPEND is for PgBouncer's online restart, which pgninja does not do").
			WithHint("PAUSE holds clients while a server restarts; SIGTERM lets transactions end before pgninja stops.")
	case "DISABLE", "ENABLE":
		if len(args) != 1 {
			return nil, true, pgerr.New(pgerr.SyntaxError, "%s takes a database name", verb)
		}
	}
	db, err := consoleDatabase(s, verb, args)
	if err != nil {
		return nil, true, err
	}
	switch verb {
	case "KILL":
		s.consoleKill(db)
	case "DISABLE", "ENABLE":
		s.srv.disabled.set(db, verb == "DISABLE")
	case "WAIT_CLOSE":
		if err := s.consoleWaitClose(db); err != nil {
			return nil, true, err
		}
	}
	return done, true, nil
}
