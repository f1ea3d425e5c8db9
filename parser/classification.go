package parser

// Classification is everything the router and the session tracker need to
// know about one query string (possibly several statements).
//
// Values returned by Classifier are shared by every caller that sent the same
// (normalized) text: never modify one, including its slices.
type Classification struct {
	// Kind is the strongest kind among the statements (see Kind).
	Kind Kind
	// StatementKinds has one entry per statement, in order.
	StatementKinds []Kind
	// MultiStatement is true when the string holds more than one statement.
	MultiStatement bool
	// FixedResult: the string is one query (SELECT, VALUES, INSERT,
	// UPDATE, DELETE, MERGE) whose result shape PostgreSQL fixes when it
	// is prepared.
	FixedResult bool

	// TxnReadOnly is the access mode requested by BEGIN / START TRANSACTION /
	// SET TRANSACTION in this string (the last one that says anything).
	TxnReadOnly AccessMode
	// TxnIsolation is the isolation level BEGIN / START TRANSACTION / SET
	// TRANSACTION in this string asks for, lower-case ("serializable"),
	// or "" where none does.
	TxnIsolation string
	// TxnStart: the transaction opens with START TRANSACTION, whose
	// command tag differs from BEGIN's.
	TxnStart bool
	// TxnChain: a COMMIT or ROLLBACK AND CHAIN, which opens the next
	// transaction at once.
	TxnChain bool

	// ReadTables and WriteTables are relation names as written in the SQL:
	// "public.t" if the SQL says public.t, "t" otherwise. CTE names are not
	// tables. A table both read and written appears in both. Where the
	// classifier knows the database's catalog (SetCatalog), the relations
	// they reach follow, unqualified: a view's tables, the tables a
	// partition or inheriting table belongs to, and for writes the
	// tables foreign-key cascades write.
	ReadTables  []string
	WriteTables []string
	// Functions are the functions called, as written ("now",
	// "myschema.f"); SQL-syntax forms like EXTRACT(...) appear under their
	// function name ("extract").
	Functions []string
	// VolatileFunc: some function is volatile or of unknown volatility, so
	// the statement may have side effects or differ per server.
	VolatileFunc bool

	// UnnamedWrites: the string may write tables it does not name: it
	// calls a procedure, runs an anonymous block or a prepared statement
	// the classifier cannot see, calls a volatile function that is not a
	// built-in, runs TRUNCATE ... CASCADE, or (with the catalog known)
	// writes a relation with a volatile trigger or a rule.
	UnnamedWrites bool

	Locking             bool // FOR UPDATE / NO KEY UPDATE / SHARE / KEY SHARE
	SelectInto          bool // SELECT ... INTO new_table
	ModifyingCTE        bool // WITH x AS (INSERT/UPDATE/DELETE/MERGE ...)
	ExplainAnalyzeWrite bool // EXPLAIN ANALYZE executes a write
	// CopyFromClient: COPY ... FROM STDIN, after which the server reads
	// the client's data, so nothing may be sent behind the statement.
	CopyFromClient bool
	// AdvisoryLock: the string takes an advisory lock, of the session or
	// the transaction. Such a lock excludes only holders on the same
	// server: taken on a replica, it would exclude no one on the primary.
	AdvisoryLock bool

	// Pins lists session-state features used (see Pins).
	Pins Pins
	// Releases lists the pinning features whose whole session state the
	// statement ends for good: UNLISTEN * (PinListen),
	// pg_advisory_unlock_all() (PinAdvisoryLock), DISCARD TEMP
	// (PinTempTable), CLOSE ALL (PinHoldCursor).
	Releases Pins
	// HoldCursors are the cursors DECLARE ... WITH HOLD opens, and
	// ClosedCursors those CLOSE closes by name: a client keeps its server
	// connection while a cursor it holds is open.
	HoldCursors, ClosedCursors []string
	// Sequences is how the string uses the session's sequence values,
	// which currval and lastval read (see SeqUse).
	Sequences SeqUse
	// StatementName is the prepared statement named by PREPARE, EXECUTE or
	// DEALLOCATE ("" for DEALLOCATE ALL).
	StatementName string
	// Prepared is, for a string that is one PREPARE, how the statement it
	// prepares classifies: what an EXECUTE of it will run (see
	// Classifier.Executing).
	Prepared *Classification

	// SetParams lists session and local parameter changes in order.
	// SET/RESET of pgninja.route is not included: see SessionRoute.
	SetParams []SetParam
	// SessionRoute is set by SET pgninja.route (HintAuto for RESET or
	// 'auto'); HintNone if the string does not touch it.
	SessionRoute Hint
	// RouteReset: the string returns pgninja.route to the session's
	// default (RESET, SET ... TO DEFAULT, RESET ALL), which the client's
	// startup packet may have set.
	RouteReset bool
	// Hint is the leading /* pgninja:VALUE */ comment, if any.
	Hint Hint
	// HintErr is a *HintError when a hint comment or SET pgninja.route has
	// an unknown value; the proxy answers it with SQLSTATE 22023.
	HintErr error

	// Fingerprint identifies the statement shape (pg_query fingerprint;
	// literals and formatting do not change it).
	Fingerprint uint64
	// Normalized is the text with literals replaced by $n (see Normalize).
	Normalized string

	// ParseError is PostgreSQL's parser error; Kind is then Unknown. The
	// statement should still be sent to the primary so the client sees the
	// server's own error.
	ParseError error

	// literal marks classifications that depend on literal values and so
	// cannot be shared by every text with the same normalized form.
	literal bool
}

// SetParam is one parameter change made by SET or RESET.
type SetParam struct {
	// Name is the parameter as PostgreSQL knows it, lower-cased
	// ("search_path"; SET TIME ZONE sets "timezone"; SET SESSION
	// CHARACTERISTICS sets "default_transaction_read_only" etc). Empty for
	// RESET ALL.
	Name string
	// Value is the value's SQL text exactly as written ("a, b", "'UTC'"),
	// empty for RESET and SET ... TO DEFAULT.
	Value string
	// Values are the decoded constants ("a", "b"; "UTC").
	Values []string
	// Stmt is the whole original statement text, for replaying it on
	// another server connection.
	Stmt string
	// Reset is true for RESET name and SET name TO DEFAULT.
	Reset bool
	// ResetAll is true for RESET ALL.
	ResetAll bool
	// Local is true for SET LOCAL (lasts until end of transaction).
	Local bool
	// FromCurrent is true for SET name FROM CURRENT.
	FromCurrent bool
	// Savepoint, when set, makes this entry no setting but a SAVEPOINT,
	// RELEASE or ROLLBACK TO of SavepointName, kept in order among the
	// settings: a ROLLBACK TO undoes the settings made since.
	Savepoint     SavepointOp
	SavepointName string
}

// SavepointOp is what a savepoint statement does.
type SavepointOp uint8

const (
	SavepointNone     SavepointOp = iota
	SavepointDefine               // SAVEPOINT name
	SavepointRelease              // RELEASE [SAVEPOINT] name
	SavepointRollback             // ROLLBACK TO [SAVEPOINT] name
)

// MayWrite reports whether running the string may have changed data or
// schema on the server that ran it, so a commit afterwards must advance the
// client's read-your-writes position. It is deliberately broad: volatile or
// unknown functions may write, and so may unparseable text.
func (c *Classification) MayWrite() bool {
	switch c.Kind {
	case Write, DDL, Unknown, Utility:
		return true
	}
	return c.VolatileFunc
}
