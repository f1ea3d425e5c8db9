package parser

import "sync/atomic"

// Memo holds one statement's classification for as long as the
// classifier's volatility source stays the same: a prepared statement's
// text never changes, so a proxy that classifies it at every Bind can
// skip the normalizer and the cache lookup (about a thousand instructions
// a transaction) until a reload of pg_proc could change the verdict.
// Its zero value is empty; it is safe for concurrent use.
type Memo struct {
	e atomic.Pointer[memoEntry]
}

type memoEntry struct {
	vol *volSource
	cl  *Classification
}

// ClassifyMemo is Classify for sql, the one text m is ever used for.
func (c *Classifier) ClassifyMemo(sql string, m *Memo) *Classification {
	// Loaded before classifying: an answer computed across a swap is kept
	// under the old source, so the next call classifies again.
	vol := c.vol.Load()
	if e := m.e.Load(); e != nil && e.vol == vol {
		return e.cl
	}
	cl := c.classify(sql, false)
	m.e.Store(&memoEntry{vol: vol, cl: cl})
	return cl
}
