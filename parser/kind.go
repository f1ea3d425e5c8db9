package parser

import "strings"

// Kind is what a statement does, as far as routing cares.
//
// Kinds are ordered by strength: for a multi-statement string the strongest
// statement's kind becomes the string's Kind, so that a string is never
// routed anywhere one of its statements could not run. From weakest to
// strongest:
//
//	Read < TxnCommit < TxnRollback < TxnOther < SetLocal < Set < Utility
//	     < TxnBegin < Write < DDL < Unknown
//
// TxnBegin outranks Read/Set/Utility because "BEGIN; SELECT 1" leaves a
// transaction open, so the string must be placed like a BEGIN (its mode
// decides primary or replica), not like a lone SELECT.
type Kind uint8

const (
	// Unknown: unparseable or unrecognized; always routed to the primary.
	Unknown Kind = iota
	// Read: SELECT, VALUES, TABLE, EXPLAIN without ANALYZE of a write,
	// COPY ... TO STDOUT, DECLARE CURSOR for a query.
	Read
	// Write: INSERT/UPDATE/DELETE/MERGE, data-modifying CTEs, SELECT INTO,
	// TRUNCATE, REFRESH MATERIALIZED VIEW, COPY FROM, CALL, DO,
	// EXPLAIN ANALYZE of a write.
	Write
	// DDL: CREATE/ALTER/DROP/GRANT/COMMENT... anything that changes the
	// schema or catalog.
	DDL
	// TxnBegin: BEGIN / START TRANSACTION (see Classification.TxnReadOnly).
	TxnBegin
	// TxnCommit: COMMIT / END.
	TxnCommit
	// TxnRollback: ROLLBACK / ABORT.
	TxnRollback
	// TxnOther: SAVEPOINT, RELEASE, ROLLBACK TO, SET TRANSACTION, and the
	// two-phase commit commands.
	TxnOther
	// Set: session-level SET / RESET / RESET ALL / SET SESSION
	// CHARACTERISTICS.
	Set
	// SetLocal: SET LOCAL (lasts until the end of the transaction).
	SetLocal
	// Utility: SHOW, LISTEN/NOTIFY, PREPARE/EXECUTE/DEALLOCATE, DISCARD,
	// FETCH/CLOSE, VACUUM/ANALYZE/CLUSTER/REINDEX, CHECKPOINT, LOCK, LOAD,
	// COPY to a server file or program.
	Utility
)

// numKinds is the number of Kind values, for parsing names back.
const numKinds = int(Utility) + 1

func (k Kind) String() string {
	switch k {
	case Read:
		return "read"
	case Write:
		return "write"
	case DDL:
		return "ddl"
	case TxnBegin:
		return "txn_begin"
	case TxnCommit:
		return "txn_commit"
	case TxnRollback:
		return "txn_rollback"
	case TxnOther:
		return "txn_other"
	case Set:
		return "set"
	case SetLocal:
		return "set_local"
	case Utility:
		return "utility"
	}
	return "unknown"
}

// MarshalText makes kinds readable in JSON (golden files, admin output).
func (k Kind) MarshalText() ([]byte, error) { return []byte(k.String()), nil }

// UnmarshalText is the inverse of MarshalText; unknown names map to Unknown.
func (k *Kind) UnmarshalText(b []byte) error {
	*k = Unknown
	for i := 0; i < numKinds; i++ {
		if Kind(i).String() == string(b) {
			*k = Kind(i)
			break
		}
	}
	return nil
}

// strength implements the order documented on Kind.
func (k Kind) strength() int {
	switch k {
	case Read:
		return 1
	case TxnCommit:
		return 2
	case TxnRollback:
		return 3
	case TxnOther:
		return 4
	case SetLocal:
		return 5
	case Set:
		return 6
	case Utility:
		return 7
	case TxnBegin:
		return 8
	case Write:
		return 9
	case DDL:
		return 10
	}
	return 11 // Unknown
}

// Stronger returns the stronger of two kinds (see Kind).
func Stronger(a, b Kind) Kind {
	if b.strength() > a.strength() {
		return b
	}
	return a
}

// AccessMode is the tri-state READ ONLY / READ WRITE / unspecified mode of
// BEGIN, START TRANSACTION and SET TRANSACTION.
type AccessMode uint8

const (
	AccessUnspecified AccessMode = iota
	ReadOnly
	ReadWrite
)

func (m AccessMode) String() string {
	switch m {
	case ReadOnly:
		return "read_only"
	case ReadWrite:
		return "read_write"
	}
	return ""
}

// MarshalText renders the mode as "read_only", "read_write" or "".
func (m AccessMode) MarshalText() ([]byte, error) { return []byte(m.String()), nil }

// UnmarshalText is the inverse of MarshalText.
func (m *AccessMode) UnmarshalText(b []byte) error {
	switch string(b) {
	case "read_only":
		*m = ReadOnly
	case "read_write":
		*m = ReadWrite
	default:
		*m = AccessUnspecified
	}
	return nil
}

// Pins is a set of session-state features. A transaction pooler must keep
// a client on its server connection once it uses any of the pinning ones:
// everything but PinUnlisten, PinExecute and PinDeallocate, which only
// refer to state that an earlier LISTEN or PREPARE created.
type Pins uint16

const (
	PinListen       Pins = 1 << iota // LISTEN
	PinUnlisten                      // UNLISTEN
	PinTempTable                     // CREATE TEMP TABLE/VIEW/SEQUENCE, SELECT INTO TEMP
	PinAdvisoryLock                  // session-level pg_advisory_lock*/pg_try_advisory_lock*
	PinHoldCursor                    // DECLARE ... WITH HOLD
	PinRole                          // SET ROLE / SET SESSION AUTHORIZATION
	PinPrepare                       // PREPARE name
	PinExecute                       // EXECUTE name
	PinDeallocate                    // DEALLOCATE name / ALL
	PinSetConfig                     // set_config(..., false) or non-constant is_local: changes a session setting
)

func pinName(p Pins) string {
	switch p {
	case PinListen:
		return "listen"
	case PinUnlisten:
		return "unlisten"
	case PinTempTable:
		return "temp_table"
	case PinAdvisoryLock:
		return "advisory_lock"
	case PinHoldCursor:
		return "hold_cursor"
	case PinRole:
		return "role"
	case PinPrepare:
		return "prepare"
	case PinExecute:
		return "execute"
	case PinDeallocate:
		return "deallocate"
	case PinSetConfig:
		return "set_config"
	}
	return ""
}

// Has reports whether all bits of q are set.
func (p Pins) Has(q Pins) bool { return p&q == q }

func (p Pins) String() string {
	var b strings.Builder
	for bit := Pins(1); bit != 0 && bit <= PinSetConfig; bit <<= 1 {
		if p&bit != 0 {
			if b.Len() > 0 {
				b.WriteByte(',')
			}
			b.WriteString(pinName(bit))
		}
	}
	return b.String()
}

// MarshalText renders pins as a comma-separated list.
func (p Pins) MarshalText() ([]byte, error) { return []byte(p.String()), nil }
