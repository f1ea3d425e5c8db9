package parser

import (
	"hash/maphash"
	"strings"
	"sync"
	"sync/atomic"
	"unsafe"
)

// DefaultCacheSize is used when NewClassifier gets a size <= 0.
const DefaultCacheSize = 10000

// cacheShards spreads LRU lock traffic: every query does a Get, which
// takes the shard's lock to update recency.
const cacheShards = 16

// normKey keys the shared cache. The hint is part of the key because the
// normalized text drops comments, and the hint is a comment.
type normKey struct {
	hint Hint
	sql  string
}

// Classifier classifies SQL text and caches the results. It is safe for
// concurrent use. Use one per database: function volatility is per
// database.
type Classifier struct {
	seed maphash.Seed
	// shared holds classifications that depend only on the normalized
	// text, so every literal variant of a statement hits the same entry.
	shared [cacheShards]*textCache[normKey]
	// exact holds classifications that depend on literal values (SET,
	// EXPLAIN option values) and parse errors, keyed by the full text.
	exact *textCache[string]
	vol   atomic.Pointer[volSource]
	// swap is held by SetVolatility while it swaps and purges, and shared
	// by a miss while it checks that its answer was computed with the
	// current volatility and caches it. Without it, a miss that started
	// before a reload (the first statements of a database race its first
	// pg_proc read) could cache the old answer after the purge, and keep
	// it until evicted.
	swap sync.RWMutex
}

// volSource wraps one volatility source and the relations known with it;
// a new one is made per swap, so pointer equality says whether it changed.
type volSource struct {
	fn   VolatilityFunc
	rels *Relations
}

// NewClassifier returns a Classifier caching about cacheSize statement
// shapes in at most DefaultCacheBytes of text. volatility may be nil,
// meaning BuiltinVolatility.
func NewClassifier(cacheSize int, volatility VolatilityFunc) *Classifier {
	return newClassifier(cacheSize, DefaultCacheBytes, volatility)
}

// newClassifier gives three quarters of the byte budget to the shared
// shapes, which every literal variant reuses, and the rest to the exact
// texts.
func newClassifier(cacheSize int, cacheBytes int64, volatility VolatilityFunc) *Classifier {
	if cacheSize <= 0 {
		cacheSize = DefaultCacheSize
	}
	per := max(cacheSize/cacheShards, 1)
	c := &Classifier{seed: maphash.MakeSeed()}
	for i := range c.shared {
		c.shared[i] = newTextCache(per, cacheBytes*3/4/cacheShards, sharedCost)
	}
	c.exact = newTextCache(max(cacheSize/4, 64), cacheBytes/4, exactCost)
	c.SetVolatility(volatility)
	return c
}

// SetVolatility replaces the volatility source (after reloading pg_proc,
// e.g. following DDL) and drops cached classifications, which embed the old
// answers.
func (c *Classifier) SetVolatility(v VolatilityFunc) {
	var rels *Relations
	if cur := c.vol.Load(); cur != nil {
		rels = cur.rels
	}
	c.SetCatalog(v, rels)
}

// SetCatalog replaces the volatility source and the relations read from
// the catalog with it (nil: none known), and drops cached
// classifications.
func (c *Classifier) SetCatalog(v VolatilityFunc, rels *Relations) {
	if v == nil {
		v = BuiltinVolatility
	}
	c.swap.Lock()
	defer c.swap.Unlock()
	c.vol.Store(&volSource{fn: v, rels: rels})
	c.Purge()
}

// remember caches cl via add if it was computed with vol, still the
// current volatility.
func (c *Classifier) remember(vol *volSource, add func()) {
	c.swap.RLock()
	defer c.swap.RUnlock()
	if c.vol.Load() == vol {
		add()
	}
}

// Purge empties the caches.
func (c *Classifier) Purge() {
	for _, s := range c.shared {
		s.Purge()
	}
	c.exact.Purge()
}

// Len is the number of cached classifications.
func (c *Classifier) Len() int {
	n := c.exact.Len()
	for _, s := range c.shared {
		n += s.Len()
	}
	return n
}

// Bytes estimates the text the caches hold.
func (c *Classifier) Bytes() int64 {
	n := c.exact.Bytes()
	for _, s := range c.shared {
		n += s.Bytes()
	}
	return n
}

// Classify returns the classification of sql. The result is shared:
// treat it as read-only.
//
// The hot path is a pure-Go normalization into a stack buffer and one LRU
// lookup; the cgo parser runs only on a miss.
func (c *Classifier) Classify(sql string) *Classification { return c.classify(sql, false) }

// ClassifyBytes is Classify for a query in a buffer the caller will reuse,
// such as a client message: a cache hit, the common case, reads the text
// in place, and only a classification that keeps the text copies it. The
// proxy classifies every simple query, and making each one a string was
// all that a pgbench -S transaction allocated.
func (c *Classifier) ClassifyBytes(sql []byte) *Classification {
	return c.classify(unsafe.String(unsafe.SliceData(sql), len(sql)), true)
}

// classify is Classify; borrowed says sql aliases the caller's buffer, so
// that whatever outlives the call must hold a copy of it.
func (c *Classifier) classify(sql string, borrowed bool) *Classification {
	cl, _ := c.classifyShared(sql, borrowed)
	return cl
}

// classifyShared is classify; shared says the answer stands for every
// text that normalizes as sql does and has no hint: it is the shared
// cache's entry for sql's normalized text, and depends on no literal.
func (c *Classifier) classifyShared(sql string, borrowed bool) (_ *Classification, shared bool) {
	hint, hintErr := leadingHint(sql)
	if hintErr != nil {
		if borrowed {
			// The error quotes the hint's value, a piece of sql.
			sql = strings.Clone(sql)
			hint, hintErr = leadingHint(sql)
		}
		return c.classifyExact(sql, Normalize(sql), hint, hintErr, false), false
	}
	var buf [512]byte
	norm, complete := appendNormalized(buf[:0], sql)
	if !complete {
		return c.classifyExact(sql, string(norm), hint, nil, borrowed), false
	}
	// The key only lives for the lookup, so it may alias the stack buffer.
	key := normKey{hint: hint, sql: unsafe.String(unsafe.SliceData(norm), len(norm))}
	shard := c.shared[maphash.String(c.seed, key.sql)%cacheShards]
	if cl, ok := shard.Get(key); ok {
		if !cl.literal {
			return cl, hint == HintNone
		}
		return c.classifyExact(sql, cl.Normalized, hint, nil, borrowed), false
	}
	if cl, ok := c.exact.Get(sql); ok {
		return cl, false
	}
	if borrowed {
		sql = strings.Clone(sql)
	}
	vol := c.vol.Load()
	cl := analyze(sql, string(norm), hint, nil, vol.fn, vol.rels)
	c.remember(vol, func() {
		switch {
		case cl.ParseError != nil:
			// A literal can make the difference between parsing and not
			// (U&'\zzzz'), so an error must not stand for every variant.
			c.exact.Add(sql, cl)
		case cl.literal:
			// Remember that this shape is literal-sensitive, so later
			// variants skip straight to the exact cache.
			c.exact.Add(sql, cl)
			shard.Add(normKey{hint: hint, sql: cl.Normalized}, cl)
		default:
			shard.Add(normKey{hint: hint, sql: cl.Normalized}, cl)
		}
	})
	return cl, cl.ParseError == nil && !cl.literal && hint == HintNone
}

func (c *Classifier) classifyExact(sql, normalized string, hint Hint, hintErr error, borrowed bool) *Classification {
	if cl, ok := c.exact.Get(sql); ok {
		return cl
	}
	if borrowed {
		sql = strings.Clone(sql)
	}
	vol := c.vol.Load()
	cl := analyze(sql, normalized, hint, hintErr, vol.fn, vol.rels)
	c.remember(vol, func() { c.exact.Add(sql, cl) })
	return cl
}

// Analyze classifies sql without any cache. It is for tools and tests;
// the proxy should use a Classifier.
func Analyze(sql string, volatility VolatilityFunc) *Classification {
	hint, hintErr := leadingHint(sql)
	return analyze(sql, Normalize(sql), hint, hintErr, volatility, nil)
}
