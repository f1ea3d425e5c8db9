package proxy

import (
	"context"
	"log/slog"
	"sync"
	"time"

	"github.com/ai-ninja/pgninja/parser"
	"github.com/ai-ninja/pgninja/pool"
)

// classifiers keeps one statement classifier per server database, because
// function volatility (read from pg_proc on the primary) is per database.
// Until a database's pg_proc has been read, built-in knowledge applies and
// unknown functions count as volatile, which only costs trips to the
// primary.
type classifiers struct {
	log  *slog.Logger
	mu   sync.Mutex
	byDB map[string]*dbClassifier
}

type dbClassifier struct {
	c       *parser.Classifier
	target  pool.Target
	mu      sync.Mutex
	loading bool
	loaded  time.Time
}

func newClassifiers(log *slog.Logger) *classifiers {
	return &classifiers{log: log, byDB: map[string]*dbClassifier{}}
}

// forDB returns the database's classifier, starting the first pg_proc
// load through t.
func (cs *classifiers) forDB(t pool.Target) *parser.Classifier {
	cs.mu.Lock()
	dc, ok := cs.byDB[t.Database]
	if !ok {
		dc = &dbClassifier{c: parser.NewClassifier(10000, parser.BuiltinVolatility), target: t}
		cs.byDB[t.Database] = dc
	}
	cs.mu.Unlock()
	if !ok {
		go cs.reload(dc)
	}
	return dc.c
}

// refresh reloads a database's volatility after DDL there, at most once a
// second.
func (cs *classifiers) refresh(db string) {
	cs.mu.Lock()
	dc := cs.byDB[db]
	cs.mu.Unlock()
	if dc != nil {
		go cs.reload(dc)
	}
}

func (cs *classifiers) reload(dc *dbClassifier) {
	dc.mu.Lock()
	if dc.loading || time.Since(dc.loaded) < time.Second {
		dc.mu.Unlock()
		return
	}
	dc.loading = true
	dc.mu.Unlock()
	defer func() {
		dc.mu.Lock()
		dc.loading = false
		dc.mu.Unlock()
	}()
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	pc, err := pool.Connect(ctx, dc.target, "pgninja-volatility")
	if err != nil {
		cs.log.Warn("cannot read function volatility; unknown functions go to the primary", "database", dc.target.Database, "err", err)
		return
	}
	defer pc.Close(context.Background())
	m, err := parser.LoadVolatility(ctx, parser.PgConnRows(pc))
	if err != nil {
		cs.log.Warn("cannot read function volatility; unknown functions go to the primary", "database", dc.target.Database, "err", err)
		return
	}
	dc.c.SetVolatility(parser.VolatilityLookup(m))
	cs.log.Debug("function volatility loaded", "database", dc.target.Database, "functions", len(m))
	dc.mu.Lock()
	dc.loaded = time.Now()
	dc.mu.Unlock()
}
