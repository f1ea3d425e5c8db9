package parser

import (
	"sync"
	"sync/atomic"

	lru "github.com/hashicorp/golang-lru/v2"
)

// DefaultCacheBytes bounds the statement text a Classifier keeps, keys
// and normalized texts together.
//
// A count alone does not bound memory: a client may send statements of
// up to max_message_size, and ORMs build IN lists and multi-row VALUES
// whose every length is a shape of its own, so ten thousand shapes of
// tens of kilobytes each would hold hundreds of megabytes. Within this
// budget the usual shapes, a few hundred bytes to a few kilobytes, fit
// in their thousands.
const DefaultCacheBytes = 64 << 20

// entryOverhead approximates what an entry holds besides its text: the
// Classification and its slices, and the LRU's own list element.
const entryOverhead = 512

// textCache is an LRU of classifications bounded both by entries and by
// the bytes of text they hold. An entry larger than the whole budget is
// not kept: classifying it again costs less than holding it.
type textCache[K comparable] struct {
	// mu serialises Add, so that the byte count matches what the cache
	// holds; Get goes straight to the LRU, which has its own lock.
	mu     sync.Mutex
	l      *lru.Cache[K, *Classification]
	bytes  atomic.Int64
	budget int64
	cost   func(K, *Classification) int64
}

func newTextCache[K comparable](entries int, budget int64, cost func(K, *Classification) int64) *textCache[K] {
	t := &textCache[K]{budget: budget, cost: cost}
	l, err := lru.NewWithEvict(entries, func(k K, cl *Classification) { t.bytes.Add(-t.cost(k, cl)) })
	if err != nil {
		panic(err) // only for entries <= 0, which callers rule out
	}
	t.l = l
	return t
}

func (t *textCache[K]) Get(k K) (*Classification, bool) { return t.l.Get(k) }

func (t *textCache[K]) Add(k K, cl *Classification) {
	n := t.cost(k, cl)
	if n > t.budget {
		return
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	// Replacing a value evicts nothing, so the old one is taken out first
	// for its bytes to be given back.
	t.l.Remove(k)
	t.bytes.Add(n)
	t.l.Add(k, cl)
	for t.bytes.Load() > t.budget {
		if _, _, ok := t.l.RemoveOldest(); !ok {
			break
		}
	}
}

func (t *textCache[K]) Purge() {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.l.Purge()
}

func (t *textCache[K]) Len() int { return t.l.Len() }

// Bytes is the text the cache holds, by its own estimate.
func (t *textCache[K]) Bytes() int64 { return t.bytes.Load() }

// sharedCost: a shared entry's key is its classification's Normalized.
func sharedCost(k normKey, _ *Classification) int64 { return int64(len(k.sql)) + entryOverhead }

// exactCost: an exact entry's key is the whole text, which the settings
// it records (SetParam.Stmt) are cut from; its normalized text is a
// string of its own.
func exactCost(k string, cl *Classification) int64 {
	return int64(len(k)+len(cl.Normalized)) + entryOverhead
}
