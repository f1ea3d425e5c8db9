package parser

import "strconv"

// Normalize returns sql with every literal (numbers, '...', E'...', B'...',
// X'...', N'...', U&'...', $tag$...$tag$) and every $n parameter replaced by
// positional placeholders $1, $2, ... in order of appearance; comments
// dropped; runs of whitespace collapsed to one space; and leading/trailing
// whitespace and trailing semicolons removed. Double-quoted identifiers and
// keywords are kept exactly as written.
//
// Normalize is idempotent, and two statements with the same normalized text
// differ only in literal values, which is what makes it a safe cache key for
// classification.
func Normalize(sql string) string {
	return string(AppendNormalized(nil, sql))
}

// AppendNormalized appends the normalized form of sql to dst. It allocates
// only if dst lacks capacity, so callers on the hot path pass a stack buffer.
//
// The scanner mirrors PostgreSQL's lexer for everything that decides where a
// token ends (quotes, escapes, nested comments, dollar quotes, identifiers
// that may contain '$'), because a token boundary disagreeing with the real
// lexer could let two structurally different statements share a key.
func AppendNormalized(dst []byte, sql string) []byte {
	dst, _ = appendNormalized(dst, sql)
	return dst
}

// appendNormalized also reports whether every quote, comment and dollar
// quote was terminated. Text that is not complete is a lexer error for
// PostgreSQL, and must not share a cache entry with the valid statement it
// normalizes to.
func appendNormalized(dst []byte, sql string) (_ []byte, complete bool) {
	return appendNormalizedRuns(dst, sql, true)
}

// appendNormalizedRuns is appendNormalized; runs says whether text that
// normalizes to itself is copied in runs (verbatimRun) rather than token
// by token. The output is the same either way (FuzzNormalizeRuns); the
// runs make a typical statement one copy up to its first literal, which
// took a third off the time for pgbench's SELECT.
func appendNormalizedRuns(dst []byte, sql string, runs bool) (_ []byte, complete bool) {
	start := len(dst)
	complete = true
	s := sql
	n := 0
	space := false
	for i := 0; i < len(s); {
		if runs && !space {
			if j := verbatimRun(s, i, len(dst) > start); j > i {
				dst = append(dst, s[i:j]...)
				i = j
				continue
			}
		}
		c := s[i]
		if isSpace(c) {
			space = true
			i++
			continue
		}
		if c == '-' && i+1 < len(s) && s[i+1] == '-' {
			i = skipLineComment(s, i+2)
			space = true
			continue
		}
		if c == '/' && i+1 < len(s) && s[i+1] == '*' {
			var ok bool
			i, ok = scanBlockComment(s, i+2)
			complete = complete && ok
			space = true
			continue
		}
		if space && len(dst) > start {
			dst = append(dst, ' ')
		}
		space = false

		switch {
		case c == '\'':
			var ok bool
			i, ok = scanQuoted(s, i+1, false)
			complete = complete && ok
			dst = appendPlaceholder(dst, start, &n)
		case c == '"':
			j, ok := scanQuotedIdent(s, i+1)
			complete = complete && ok
			dst = append(dst, s[i:j]...)
			i = j
		case c == '$':
			if i+1 < len(s) && isDigit(s[i+1]) {
				j := i + 1
				for j < len(s) && isDigit(s[j]) {
					j++
				}
				dst = appendPlaceholder(dst, start, &n)
				i = j
			} else if end := dollarTagEnd(s, i); end > 0 {
				var ok bool
				i, ok = scanDollarBody(s, i, end)
				complete = complete && ok
				dst = appendPlaceholder(dst, start, &n)
			} else {
				dst = append(dst, c)
				i++
			}
		case isDigit(c) || (c == '.' && i+1 < len(s) && isDigit(s[i+1])):
			i = scanNumber(s, i)
			dst = appendPlaceholder(dst, start, &n)
		case isIdentStart(c):
			j := i + 1
			for j < len(s) && isIdentCont(s[j]) {
				j++
			}
			if end, ok, lit := prefixedLiteral(s, i, j); lit {
				complete = complete && ok
				dst = appendPlaceholder(dst, start, &n)
				i = end
				continue
			}
			dst = append(dst, s[i:j]...)
			i = j
		default:
			dst = append(dst, c)
			i++
		}
	}
	for len(dst) > start && (dst[len(dst)-1] == ';' || dst[len(dst)-1] == ' ') {
		dst = dst[:len(dst)-1]
	}
	return dst, complete
}

// verbatimRun returns where the run of text from i that the token loop
// would copy unchanged ends: identifiers, operators and punctuation, and
// single spaces between them. It stops before anything the loop changes or
// must look at closely: a literal or parameter (a quote, a digit starting
// a token, '$', a one-letter identifier before a quote or '&', which may
// prefix a literal), a comment, a quoted identifier, and whitespace that
// is not one space between two tokens. emitted: the output holds a token
// already, so a space is kept. The token loop is never entered with a
// space pending.
func verbatimRun(s string, i int, emitted bool) int {
	for i < len(s) {
		c := s[i]
		k := byteClass[c]
		switch {
		case k&classIdentStart != 0:
			j := i + 1
			for j < len(s) && byteClass[s[j]]&classIdentCont != 0 {
				j++
			}
			if j == i+1 && j < len(s) && (s[j] == '\'' || s[j] == '&') {
				return i
			}
			i, emitted = j, true
			// The usual case, one space and the next word, is taken
			// without the space's checks: a word is neither whitespace
			// nor a comment.
			if i+1 < len(s) && s[i] == ' ' && byteClass[s[i+1]]&classIdentStart != 0 {
				i++
			}
			continue
		case k&(classDigit|classSpace) != 0 && c != ' ':
			return i
		case c == ' ':
			if !emitted || i+1 >= len(s) {
				return i
			}
			if next := s[i+1]; isSpace(next) || startsComment(s, i+1) {
				return i
			}
		case c == '\'' || c == '"' || c == '$':
			return i
		case c == '-' || c == '/':
			if startsComment(s, i) {
				return i
			}
		case c == '.':
			if i+1 < len(s) && isDigit(s[i+1]) {
				return i
			}
		}
		i++
		emitted = emitted || c != ' '
	}
	return i
}

// startsComment: a -- or /* comment starts at i.
func startsComment(s string, i int) bool {
	return i+1 < len(s) && (s[i] == '-' && s[i+1] == '-' || s[i] == '/' && s[i+1] == '*')
}

// prefixedLiteral recognizes the one-letter prefixes that turn the next
// quote into a literal with its own rules (E'...', B'...', X'...', N'...', U&'...'), given
// the identifier s[i:j]. lit is false if s[i:j] is an ordinary identifier.
func prefixedLiteral(s string, i, j int) (end int, ok, lit bool) {
	if j != i+1 || j >= len(s) {
		return 0, false, false
	}
	switch c := s[i]; {
	case (c == 'e' || c == 'E') && s[j] == '\'':
		end, ok = scanQuoted(s, j+1, true)
	case (c == 'b' || c == 'B' || c == 'x' || c == 'X' || c == 'n' || c == 'N') && s[j] == '\'':
		end, ok = scanQuoted(s, j+1, false)
	case (c == 'u' || c == 'U') && s[j] == '&' && j+1 < len(s) && s[j+1] == '\'':
		end, ok = scanQuoted(s, j+2, false)
	default:
		return 0, false, false
	}
	return end, ok, true
}

// appendPlaceholder appends the next $n. A placeholder glued to a
// preceding identifier ("abc$1") or "$" would lex back as part of it, so it
// gets a separating space; that keeps Normalize idempotent.
func appendPlaceholder(dst []byte, start int, n *int) []byte {
	if len(dst) > start && isIdentCont(dst[len(dst)-1]) {
		dst = append(dst, ' ')
	}
	*n++
	dst = append(dst, '$')
	return strconv.AppendInt(dst, int64(*n), 10)
}

// Byte classes, looked up in one table: every statement the proxy sees is
// normalized, and a load and a test per byte cost a fraction of the
// comparisons they replace.
const (
	classSpace = 1 << iota
	classDigit
	classIdentStart
	classIdentCont
)

var byteClass = func() (t [256]uint8) {
	for c := range 256 {
		b := byte(c)
		if b == ' ' || b == '\t' || b == '\n' || b == '\r' || b == '\f' || b == '\v' {
			t[c] |= classSpace // PostgreSQL's lexer whitespace
		}
		if b >= '0' && b <= '9' {
			t[c] |= classDigit | classIdentCont
		}
		// PostgreSQL treats every byte >= 0x80 as a letter, which keeps
		// multibyte UTF-8 identifiers whole without decoding them.
		if b >= 'a' && b <= 'z' || b >= 'A' && b <= 'Z' || b == '_' || b >= 0x80 {
			t[c] |= classIdentStart | classIdentCont
		}
		if b == '$' {
			t[c] |= classIdentCont
		}
	}
	return t
}()

func isSpace(c byte) bool      { return byteClass[c]&classSpace != 0 }
func isDigit(c byte) bool      { return byteClass[c]&classDigit != 0 }
func isIdentStart(c byte) bool { return byteClass[c]&classIdentStart != 0 }
func isIdentCont(c byte) bool  { return byteClass[c]&classIdentCont != 0 }

func skipLineComment(s string, i int) int {
	for i < len(s) && s[i] != '\n' && s[i] != '\r' {
		i++
	}
	return i
}

// skipBlockComment returns the index after the comment that started just
// before i; PostgreSQL block comments nest.
func skipBlockComment(s string, i int) int {
	i, _ = scanBlockComment(s, i)
	return i
}

// scanBlockComment is skipBlockComment that also reports termination.
func scanBlockComment(s string, i int) (int, bool) {
	depth := 1
	for i < len(s) {
		switch {
		case s[i] == '/' && i+1 < len(s) && s[i+1] == '*':
			depth++
			i += 2
		case s[i] == '*' && i+1 < len(s) && s[i+1] == '/':
			depth--
			i += 2
			if depth == 0 {
				return i, true
			}
		default:
			i++
		}
	}
	return i, false
}

// scanQuoted returns the index after the closing quote of a string whose
// body starts at i, and whether there was one. A doubled quote is an escaped quote; with
// backslash (E'...' strings) a backslash escapes the next byte. Unterminated
// strings run to the end, as they do for the lexer (which then reports an
// error).
func scanQuoted(s string, i int, backslash bool) (int, bool) {
	for i < len(s) {
		switch s[i] {
		case '\\':
			if backslash {
				i += 2
				continue
			}
		case '\'':
			if i+1 < len(s) && s[i+1] == '\'' {
				i += 2
				continue
			}
			return i + 1, true
		}
		i++
	}
	return len(s), false
}

func scanQuotedIdent(s string, i int) (int, bool) {
	for i < len(s) {
		if s[i] == '"' {
			if i+1 < len(s) && s[i+1] == '"' {
				i += 2
				continue
			}
			return i + 1, true
		}
		i++
	}
	return len(s), false
}

// dollarTagEnd reports the index after the opening tag if a dollar quote
// ($$ or $tag$) starts at i, else 0. Tags follow identifier rules but cannot
// contain '$' or start with a digit.
func dollarTagEnd(s string, i int) int {
	j := i + 1
	if j < len(s) && s[j] == '$' {
		return j + 1
	}
	if j >= len(s) || !isIdentStart(s[j]) {
		return 0
	}
	for j < len(s) && (isIdentStart(s[j]) || isDigit(s[j])) {
		j++
	}
	if j < len(s) && s[j] == '$' {
		return j + 1
	}
	return 0
}

// scanDollarBody returns the index after the closing tag matching the tag
// s[start:bodyStart], and whether it was found.
func scanDollarBody(s string, start, bodyStart int) (int, bool) {
	tag := s[start:bodyStart]
	for j := bodyStart; j+len(tag) <= len(s); j++ {
		if s[j] == '$' && s[j:j+len(tag)] == tag {
			return j + len(tag), true
		}
	}
	return len(s), false
}

// scanNumber returns the index after a numeric literal starting at i,
// following PostgreSQL 16: 0x/0o/0b integers, '_' digit separators,
// decimals, exponents, and "1..2" lexed as 1 followed by "..".
func scanNumber(s string, i int) int {
	if s[i] == '0' && i+2 < len(s) {
		switch s[i+1] {
		case 'x', 'X', 'o', 'O', 'b', 'B':
			j := i + 2
			for j < len(s) && (isDigit(s[j]) || s[j] == '_' || s[j] >= 'a' && s[j] <= 'f' || s[j] >= 'A' && s[j] <= 'F') {
				j++
			}
			if j > i+2 {
				return j
			}
		}
	}
	j := i
	for j < len(s) && (isDigit(s[j]) || s[j] == '_') {
		j++
	}
	if j < len(s) && s[j] == '.' && !(j+1 < len(s) && s[j+1] == '.') {
		j++
		for j < len(s) && (isDigit(s[j]) || s[j] == '_') {
			j++
		}
	}
	if j < len(s) && (s[j] == 'e' || s[j] == 'E') {
		k := j + 1
		if k < len(s) && (s[k] == '+' || s[k] == '-') {
			k++
		}
		if k < len(s) && isDigit(s[k]) {
			for k < len(s) && (isDigit(s[k]) || s[k] == '_') {
				k++
			}
			j = k
		}
	}
	return j
}
