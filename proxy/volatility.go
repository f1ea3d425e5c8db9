package proxy

import (
	"context"
	"log/slog"
	"maps"
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
	// ctx ends at close: a load under way stops, and none starts after.
	ctx    context.Context
	cancel context.CancelFunc
	// every is how often each database's catalog is read again.
	every time.Duration
}

// catalogRefresh bounds how long a function, view, cascade or trigger made
// around the proxy (by migrations run against the server itself, say)
// goes unseen; DDL through the proxy has the catalog read again at once.
const catalogRefresh = time.Minute

type dbClassifier struct {
	c       *parser.Classifier
	target  pool.Target
	mu      sync.Mutex
	loading bool
	// again: DDL came while a load ran, which may have read pg_proc
	// before it; trailing: a load is scheduled for when the second since
	// the last one is up.
	again    bool
	trailing *time.Timer
	loaded   time.Time
	// vol and rels are what the classifier was last given (apply);
	// failing: the last read failed (loadFailed). Only load uses them,
	// one load at a time.
	vol     map[string]parser.Volatility
	rels    *parser.Relations
	failing bool
}

func newClassifiers(log *slog.Logger) *classifiers {
	ctx, cancel := context.WithCancel(context.Background())
	return &classifiers{log: log, byDB: map[string]*dbClassifier{}, ctx: ctx, cancel: cancel, every: catalogRefresh}
}

// close stops the loads: the one under way, and a trailing one that
// would otherwise connect to the primary after shutdown.
func (cs *classifiers) close() {
	cs.cancel()
	cs.mu.Lock()
	defer cs.mu.Unlock()
	for _, dc := range cs.byDB {
		dc.mu.Lock()
		if dc.trailing != nil {
			dc.trailing.Stop()
			dc.trailing = nil
		}
		dc.mu.Unlock()
	}
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
		go cs.refreshEvery(dc)
	}
	return dc.c
}

// refreshEvery reads the database's catalog again every cs.every until
// close.
func (cs *classifiers) refreshEvery(dc *dbClassifier) {
	tick := time.NewTicker(cs.every)
	defer tick.Stop()
	for {
		select {
		case <-cs.ctx.Done():
			return
		case <-tick.C:
			cs.reload(dc)
		}
	}
}

// refresh reloads a database's volatility after DDL there, at most once a
// second. DDL within the second, or during a load, is not dropped: it gets
// one more load when the second is up. Dropped, a function replaced by a
// volatile one just after another change kept its old verdict, and its
// reads went on to the replicas.
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
	if cs.ctx.Err() != nil {
		// Checked under dc.mu, which close takes after ending ctx: a
		// timer armed here is one close stops.
		dc.mu.Unlock()
		return
	}
	if dc.loading {
		dc.again = true
		dc.mu.Unlock()
		return
	}
	if wait := time.Second - time.Since(dc.loaded); wait > 0 {
		if dc.trailing == nil {
			dc.trailing = time.AfterFunc(wait, func() {
				dc.mu.Lock()
				dc.trailing = nil
				dc.mu.Unlock()
				cs.reload(dc)
			})
		}
		dc.mu.Unlock()
		return
	}
	dc.loading = true
	dc.mu.Unlock()
	cs.load(dc)
	dc.mu.Lock()
	dc.loading = false
	again := dc.again
	dc.again = false
	dc.mu.Unlock()
	if again {
		cs.reload(dc)
	}
}

// load reads the database's pg_proc, and the relations that reach others
// (parser.Relations), and hands them to its classifier.
func (cs *classifiers) load(dc *dbClassifier) {
	ctx, cancel := context.WithTimeout(cs.ctx, 15*time.Second)
	defer cancel()
	pc, err := pool.Connect(ctx, dc.target, "pgninja-volatility")
	if err != nil && cs.ctx.Err() != nil {
		return // shutting down
	}
	if err != nil {
		cs.loadFailed(dc, err)
		return
	}
	defer pc.Close(context.Background())
	m, err := parser.LoadVolatility(ctx, parser.PgConnRows(pc))
	if err != nil {
		cs.loadFailed(dc, err)
		return
	}
	dc.failing = false
	rels, err := parser.LoadRelations(ctx, parser.PgConnRows(pc))
	if err != nil {
		// The relations read before (none at first: table consistency
		// then sees only the tables statements name) stay.
		cs.log.Warn("cannot read views, partitions, cascades and triggers", "database", dc.target.Database, "err", err)
		rels = nil
	}
	changed := dc.apply(m, rels)
	cs.log.Debug("function volatility and relations read", "database", dc.target.Database, "functions", len(m),
		"relations", rels.Len(), "changed", changed)
	dc.mu.Lock()
	dc.loaded = time.Now()
	dc.mu.Unlock()
}

// loadFailed logs a failed read of the catalog: a warning for the first
// of a run of failures, and at debug level after it, since the read every
// minute would otherwise warn each minute for a database gone from the
// server.
func (cs *classifiers) loadFailed(dc *dbClassifier, err error) {
	level := slog.LevelWarn
	if dc.failing {
		level = slog.LevelDebug
	}
	dc.failing = true
	cs.log.Log(context.Background(), level, "cannot read function volatility; unknown functions go to the primary",
		"database", dc.target.Database, "err", err)
}

// apply hands a read of the catalog to the classifier (rels nil: the
// relations could not be read, and the last ones stay), unless it is what
// the classifier has: a swap drops every cached classification, which
// the read every minute would otherwise do for nothing. Only load calls
// it, one load at a time.
func (dc *dbClassifier) apply(m map[string]parser.Volatility, rels *parser.Relations) (changed bool) {
	if rels == nil {
		rels = dc.rels
	}
	if dc.vol != nil && maps.Equal(m, dc.vol) && rels.Equal(dc.rels) {
		return false
	}
	dc.vol, dc.rels = m, rels
	dc.c.SetCatalog(parser.VolatilityLookup(m), rels)
	return true
}
