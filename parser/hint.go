package parser

import (
	"fmt"
	"strings"
)

// Hint is an explicit routing request from the client.
type Hint uint8

const (
	// HintNone means the client expressed nothing.
	HintNone Hint = iota
	// HintPrimary sends the statement (or session) to the primary.
	HintPrimary
	// HintReplica sends the statement (or session) to a replica.
	HintReplica
	// HintAuto explicitly asks for the router's own policy; for
	// SET pgninja.route it clears an earlier session hint.
	HintAuto
)

func (h Hint) String() string {
	switch h {
	case HintPrimary:
		return "primary"
	case HintReplica:
		return "replica"
	case HintAuto:
		return "auto"
	}
	return ""
}

// ParseHint maps a hint value ("primary", "replica", "auto", any case) to a
// Hint. Unknown values return a *HintError so the proxy can answer 22023.
func ParseHint(value, source string) (Hint, error) {
	switch {
	case strings.EqualFold(value, "primary"):
		return HintPrimary, nil
	case strings.EqualFold(value, "replica"):
		return HintReplica, nil
	case strings.EqualFold(value, "auto"):
		return HintAuto, nil
	}
	return HintNone, &HintError{Value: value, Source: source}
}

// RouteParam is the session setting clients use to pin routing
// (SET pgninja.route = 'primary'|'replica'|'auto').
const RouteParam = "pgninja.route"

// Hint sources reported in HintError.Source.
const (
	HintSourceComment = "comment"
	HintSourceSet     = "set"
)

// HintError reports an unknown routing hint value. The proxy answers it with
// an ErrorResponse instead of forwarding the statement.
type HintError struct {
	Value  string // the offending value as written
	Source string // HintSourceComment or HintSourceSet
}

func (e *HintError) Error() string {
	if e.Source == HintSourceSet {
		return fmt.Sprintf("invalid value for parameter %q: %q", RouteParam, e.Value)
	}
	return fmt.Sprintf("invalid pgninja routing hint %q (want primary, replica or auto)", e.Value)
}

// SQLState is invalid_parameter_value, what PostgreSQL itself returns for a
// bad SET value.
func (e *HintError) SQLState() string { return "22023" }

// leadingHint finds a /* pgninja:VALUE */ comment among the comments that
// precede the first token of sql. Only leading comments count: a hint in the
// middle of a statement is an ordinary comment, as it would be for
// PostgreSQL. The first pgninja comment wins.
func leadingHint(sql string) (Hint, error) {
	i := 0
	for i < len(sql) {
		c := sql[i]
		switch {
		case isSpace(c):
			i++
		case c == '-' && i+1 < len(sql) && sql[i+1] == '-':
			i = skipLineComment(sql, i+2)
		case c == '/' && i+1 < len(sql) && sql[i+1] == '*':
			end := skipBlockComment(sql, i+2)
			body := sql[i+2 : end]
			body = strings.TrimSuffix(body, "*/")
			body = strings.TrimSpace(body)
			if v, ok := strings.CutPrefix(body, "pgninja:"); ok {
				return ParseHint(strings.TrimSpace(v), HintSourceComment)
			}
			i = end
		default:
			return HintNone, nil
		}
	}
	return HintNone, nil
}

// MarshalText renders the hint as its SQL value ("" for HintNone).
func (h Hint) MarshalText() ([]byte, error) { return []byte(h.String()), nil }

// UnmarshalText accepts "", "primary", "replica" and "auto".
func (h *Hint) UnmarshalText(b []byte) error {
	if len(b) == 0 {
		*h = HintNone
		return nil
	}
	v, err := ParseHint(string(b), HintSourceSet)
	*h = v
	return err
}
