package parser

import "unsafe"

// Shapes remembers the last few statement shapes one client sent, so that
// the next statement of a shape it knows skips the normalizer and the
// cache lookup.
//
// Applications send the same few statements over and over with new
// literals (pgbench -S: SELECT ... WHERE aid = 48213). Normalizing each one
// copies and classifies every byte, and hashing the result for the shared
// cache reads them again: over a thousand instructions a statement, a
// fourteenth of what the proxy spends on a transaction-mode transaction. A
// statement of a remembered shape is the shape's normalized text with
// literals where its placeholders are, so it is recognized by comparing
// the text between the placeholders, which the runtime does many bytes at
// a time, and scanning each literal.
//
// The zero value is empty. It is not safe for concurrent use: one session
// owns it.
type Shapes struct {
	last [shapeSlots]*shape // most recently matched first
}

// shapeSlots covers the handful of statements a client's transactions
// repeat (pgbench's tpcb-like has four with literals); each slot that
// fails to match costs a comparison up to the first byte that differs.
const shapeSlots = 4

// shape is a classification with the placeholders of its normalized text
// located.
type shape struct {
	vol  *volSource // the volatility cl was computed with
	cl   *Classification
	cuts []int32 // each placeholder's start and end in cl.Normalized
}

// maxShapeCuts bounds the placeholders of a remembered shape: a statement
// with more (a long VALUES list) is cheaper to normalize than to match
// piece by piece.
const maxShapeCuts = 32

// ClassifyShaped is ClassifyBytes for a client whose recent shapes m
// holds, updating m.
func (c *Classifier) ClassifyShaped(sql []byte, m *Shapes) *Classification {
	s := unsafe.String(unsafe.SliceData(sql), len(sql))
	// Loaded before classifying, as in ClassifyMemo: an answer computed
	// across a swap is kept under the old source and not used again.
	vol := c.vol.Load()
	for i, sh := range &m.last {
		if sh == nil {
			break
		}
		if sh.vol == vol && sh.matches(s) {
			m.toFront(i, sh)
			return sh.cl
		}
	}
	cl, shared := c.classifyShared(s, true)
	if !shared {
		return cl
	}
	for i, sh := range &m.last {
		if sh != nil && sh.cl == cl && sh.vol == vol {
			// A shape this text has but does not match (its literal is
			// an E'..', say): moved up, not made again.
			m.toFront(i, sh)
			return cl
		}
	}
	cuts, ok := shapeCuts(cl.Normalized)
	if !ok {
		return cl
	}
	m.toFront(shapeSlots-1, &shape{vol: vol, cl: cl, cuts: cuts})
	return cl
}

// toFront puts sh first, moving the shapes before slot i down one; the
// shape in slot i (sh itself, or the least recent) leaves that slot.
func (m *Shapes) toFront(i int, sh *shape) {
	copy(m.last[1:i+1], m.last[:i])
	m.last[0] = sh
}

// matches reports whether s normalizes to the shape's text: s is that
// text with each placeholder replaced by a literal or parameter, followed
// by nothing but semicolons and whitespace (which Normalize drops).
//
// That s normalizes to the same text follows from how shapeCuts chose the
// shape: the text between placeholders normalizes to itself, and no byte
// next to a placeholder changes how Normalize reads the literal there or
// the text beside it (FuzzShapeMatch checks it).
func (sh *shape) matches(s string) bool {
	t := sh.cl.Normalized
	i, j := 0, 0 // in t, in s
	for k := 0; k < len(sh.cuts); k += 2 {
		a := int(sh.cuts[k])
		n := a - i
		if len(s)-j < n || s[j:j+n] != t[i:a] {
			return false
		}
		if j = literalEnd(s, j+n); j < 0 {
			return false
		}
		i = int(sh.cuts[k+1])
	}
	n := len(t) - i
	if len(s)-j < n || s[j:j+n] != t[i:] {
		return false
	}
	for _, c := range []byte(s[j+n:]) {
		if c != ';' && !isSpace(c) {
			return false
		}
	}
	return true
}

// literalEnd returns where the literal or parameter at i ends, as
// Normalize would scan it, or -1 if none starts there. Only the forms
// that start with their first byte are taken: a number, a plain quoted
// string, $n. The others (E'...', .5, $$...$$) are left to Normalize.
func literalEnd(s string, i int) int {
	if i >= len(s) {
		return -1
	}
	switch c := s[i]; {
	case isDigit(c):
		return scanNumber(s, i)
	case c == '\'':
		if end, ok := scanQuoted(s, i+1, false); ok {
			return end
		}
	case c == '$':
		j := i + 1
		for j < len(s) && isDigit(s[j]) {
			j++
		}
		if j > i+1 {
			return j
		}
	}
	return -1
}

// shapeCuts locates the placeholders of the normalized text t, and
// reports whether a statement can be matched against it (see matches). It
// refuses a placeholder next to a byte that could join the literal in
// its place, or change how it is read: an identifier character before
// it (E'..', abc5), '.' (.5), '&' (U&'..'), a quote; and after it an
// identifier character, '.' or a quote (5e3, 5.0, a doubled quote). It
// also refuses anything a normalized text should not hold, as a guard.
func shapeCuts(t string) (cuts []int32, ok bool) {
	for i := 0; i < len(t); {
		c := t[i]
		switch {
		case c == '"':
			j, ok := scanQuotedIdent(t, i+1)
			if !ok {
				return nil, false
			}
			i = j
		case isIdentStart(c):
			j := i + 1
			for j < len(t) && isIdentCont(t[j]) {
				j++
			}
			i = j
		case c == '$':
			j, n := i+1, 0
			for j < len(t) && isDigit(t[j]) && n <= maxShapeCuts {
				n = n*10 + int(t[j]-'0')
				j++
			}
			if n != len(cuts)/2+1 || len(cuts) == 2*maxShapeCuts ||
				i > 0 && !quietBefore(t[i-1]) || j < len(t) && !quietAfter(t[j]) {
				return nil, false
			}
			cuts = append(cuts, int32(i), int32(j))
			i = j
		case c == '\'' || isDigit(c) || isSpace(c) && c != ' ' ||
			c == ' ' && (i == 0 || i == len(t)-1 || t[i+1] == ' '):
			return nil, false
		default:
			i++
		}
	}
	return cuts, true
}

func quietBefore(c byte) bool {
	return !isIdentCont(c) && c != '.' && c != '&' && c != '\'' && c != '"'
}

func quietAfter(c byte) bool {
	return !isIdentCont(c) && c != '.' && c != '\'' && c != '"'
}
