package router

import "errors"

// Target is the kind of server a statement runs on.
type Target uint8

const (
	Primary Target = iota
	Replica
)

func (t Target) String() string {
	if t == Replica {
		return "replica"
	}
	return "primary"
}

// MarshalText renders the target for JSON and metric labels.
func (t Target) MarshalText() ([]byte, error) { return []byte(t.String()), nil }

// UnmarshalText parses "primary" or "replica".
func (t *Target) UnmarshalText(b []byte) error {
	switch string(b) {
	case "primary":
		*t = Primary
	case "replica":
		*t = Replica
	default:
		return errors.New("target must be primary or replica, got " + string(b))
	}
	return nil
}

// Reason says why a statement went where it did; it is a metric label, so
// the set is small and fixed.
type Reason string

const (
	// Sent to the primary because of what the statement is.
	ReasonWrite        Reason = "write"             // INSERT/UPDATE/DELETE/MERGE, data-modifying CTE, SELECT INTO, ...
	ReasonDDL          Reason = "ddl"               // schema changes
	ReasonVolatile     Reason = "volatile_function" // calls a volatile or unknown function
	ReasonLocking      Reason = "locking"           // FOR UPDATE/SHARE
	ReasonUtility      Reason = "utility"           // SHOW, LISTEN, PREPARE, VACUUM, ...
	ReasonSession      Reason = "session_command"   // SET/RESET and stray transaction control outside a transaction
	ReasonUnknown      Reason = "unknown"           // nothing recognizable (e.g. empty query)
	ReasonParseError   Reason = "parse_error"       // PostgreSQL will report the error
	ReasonExplicitTxn  Reason = "explicit_txn"      // read-write transaction block
	ReasonSessionPin   Reason = "session_pin"       // session holds server-side state (temp table, LISTEN, ...)
	ReasonNonstdString Reason = "nonstandard_strings"
	ReasonSerializable Reason = "serializable"  // SERIALIZABLE, which a hot standby refuses
	ReasonAdvisoryLock Reason = "advisory_lock" // a read-only transaction that takes an advisory lock as it opens

	// Sent to a replica (or, failing that, a fallback below).
	ReasonReplicaRead Reason = "replica_read"  // plain read outside a transaction
	ReasonReadOnlyTxn Reason = "read_only_txn" // BEGIN READ ONLY / SET TRANSACTION READ ONLY / default_transaction_read_only

	// Hints.
	ReasonHintPrimary Reason = "hint_primary" // /* pgninja:primary */
	ReasonHintReplica Reason = "hint_replica" // /* pgninja:replica */
	ReasonSessionHint Reason = "session_hint" // SET pgninja.route
	ReasonInvalidHint Reason = "invalid_hint" // unknown hint value: answer 22023

	// Replica-bound reads that ended on the primary.
	ReasonReadYourWrites   Reason = "read_your_writes"   // no replica has replayed the client's last commit
	ReasonTableLSN         Reason = "table_lsn"          // no replica has replayed the last write to a table read
	ReasonSchemaLSN        Reason = "schema_lsn"         // no replica has replayed the last schema change made through the proxy
	ReasonNoHealthyReplica Reason = "no_healthy_replica" // none in rotation
	ReasonReplicasDrained  Reason = "replicas_drained"   // the healthy replicas all have weight 0
	ReasonPrimaryRead      Reason = "primary_read"       // the primary's read weight won the rotation

	// Nowhere to go.
	ReasonNoPrimary Reason = "no_primary"
)

// ErrNoPrimary means no healthy, writable primary is known; the proxy
// should fail the statement rather than send a write to a server in
// recovery.
var ErrNoPrimary = errors.New("no healthy primary available")

// Decision is where one statement (or query string) goes.
type Decision struct {
	Target Target
	// Backend is the chosen server's name; empty from Decide (policy only)
	// and when Err is set.
	Backend string
	Reason  Reason
	// RequiredLSN is the replay position a replica needed (0 if none).
	RequiredLSN LSN
	// Err is set when the statement must not run: a *parser.HintError
	// (answer SQLSTATE 22023) or ErrNoPrimary.
	Err error
}
