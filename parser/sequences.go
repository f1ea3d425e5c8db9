package parser

import "strings"

// SeqUse says how a string touches the session's sequence values. nextval
// and setval set them on the server connection that runs the call, and
// currval and lastval read them back there: a transaction pooler that
// moves a client between connections must know which strings read values
// an earlier string set.
type SeqUse uint8

const (
	// SeqReadsPrior: a statement calls currval or lastval before any
	// statement of the string that may set sequence values, so its answer
	// depends on what earlier strings set. A statement that may do both
	// counts as setting first, as INSERT ... VALUES (nextval(..)) RETURNING
	// currval(..) does.
	SeqReadsPrior SeqUse = 1 << iota
	// SeqMaySet: a statement may call nextval or setval. Besides calls in
	// the text, that is any write (a column default, a trigger), DDL,
	// utility statement, unparseable statement, or call of a volatile or
	// unknown function.
	SeqMaySet
)

// then is u followed by the next statement's use v.
func (u SeqUse) then(v SeqUse) SeqUse {
	if u&SeqMaySet != 0 {
		v &^= SeqReadsPrior
	}
	return u | v
}

// sequenceUse is one statement's use of sequence values, from its kind
// and the functions it runs.
func sequenceUse(k Kind, funcs []string, vol VolatilityFunc) SeqUse {
	var u SeqUse
	switch k {
	case Write, DDL, Utility, Unknown:
		u |= SeqMaySet
	}
	for _, fn := range funcs {
		switch strings.TrimPrefix(fn, "pg_catalog.") {
		case "currval", "lastval":
			u |= SeqReadsPrior
			continue
		}
		if v := vol(fn); v != Immutable && v != Stable {
			u |= SeqMaySet
		}
	}
	if u&SeqMaySet != 0 {
		u &^= SeqReadsPrior
	}
	return u
}
