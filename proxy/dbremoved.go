package proxy

import (
	"sync"

	"github.com/ai-ninja/pgninja/config"
	"github.com/ai-ninja/pgninja/internal/pgerr"
	"github.com/ai-ninja/pgninja/pool"
)

// A database entry that a reload removes, or points at another server
// database, takes its clients with it, as PgBouncer drops a database
// removed from its file: each is ended at its next safe point (at once
// when idle; a transaction in flight finishes first), and its pools close
// their connections. A client left on the old mapping would otherwise
// keep leasing connections to a database the configuration no longer
// names, for as long as it stays connected.

// errDatabaseMoved ends a client whose database entry a reload removed or
// pointed elsewhere. 57P01, as for an administrator's termination, so
// that drivers and pools reconnect; the login that follows sees the new
// entry, or 3D000 when there is none.
func errDatabaseMoved(db string, now config.Database, ok bool) error {
	if !ok {
		return pgerr.Fatal(pgerr.AdminShutdown, "terminating connection: database %q was removed from pgninja's configuration", db)
	}
	return pgerr.Fatal(pgerr.AdminShutdown, "terminating connection: database %q now leads to server database %q; reconnect", db, now.DBName)
}

// stillServes reports whether cfg leads the login's database where it led
// at login, and the error that ends the client when it does not.
func stillServes(cfg *config.Config, l *login) (bool, error) {
	now, ok := cfg.Database(l.dbName)
	if ok && now.DBName == l.db.DBName {
		return true, nil
	}
	return false, errDatabaseMoved(l.dbName, now, ok)
}

// dropMovedDatabases drains the clients that cfg, just taken on, no longer
// leads where they logged in to, and decommissions the pools of server
// databases no entry leads to. configMu is held. When it returns, the
// idle ones are gone and the others end at their safe point, so that no
// request after the reload runs on the old entry; they are ended at once
// for all, as KILL ends its clients, because one that reads nothing holds
// its end up to killWriteTimeout.
func (s *Server) dropMovedDatabases(cfg *config.Config) {
	var wg sync.WaitGroup
	for _, sess := range s.sessionList() {
		l := sess.loggedInAs()
		if l == nil {
			continue // logging in: login checks again (see recheckDatabase)
		}
		if ok, err := stillServes(cfg, l); !ok {
			s.log.Info("config reload: ending a client whose database entry changed", "database", l.dbName)
			wg.Go(func() { sess.drain(err) })
		}
	}
	wg.Wait()
	s.pools.Each(func(k pool.Key, p *pool.Pool) {
		if !cfg.ServesDatabase(k.Database) {
			p.Decommission()
		}
	})
}

// loggedInAs is the session's login, nil before it has one or on the
// admin console (whose clients no database entry holds).
func (s *Session) loggedInAs() *login {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.console != config.ConsoleNone {
		return nil
	}
	return s.l
}

// recheckDatabase refuses a login that resolved its database under a
// configuration a reload has since replaced with one that leads it
// elsewhere, as that reload would have ended it. s.l is set before the
// check, so a reload either finds the session logged in (and drains it)
// or has stored its configuration before the check reads it; the pool
// the login made after the reload looked at the pools is decommissioned
// here.
func (s *Session) recheckDatabase() error {
	cfg := s.srv.settings.Load().cfg
	ok, err := stillServes(cfg, s.l)
	if ok {
		return nil
	}
	if !cfg.ServesDatabase(s.l.db.DBName) {
		s.pool.Decommission()
	}
	if _, exists := cfg.Database(s.l.dbName); !exists {
		return pgerr.Fatal(pgerr.InvalidCatalogName, "database %q does not exist", s.l.dbName)
	}
	return err
}
