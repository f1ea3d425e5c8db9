package parser

import (
	"hash/fnv"
	"strconv"
	"strings"

	pg "github.com/pganalyze/pg_query_go/v5"
)

// cursorOptHold is CURSOR_OPT_HOLD from PostgreSQL's parsenodes.h.
const cursorOptHold = 0x0020

// analyze classifies sql with the real PostgreSQL parser. It is the slow
// path (a cgo parse); Classifier calls it only on a cache miss.
func analyze(sql, normalized string, hint Hint, hintErr error, vol VolatilityFunc, rels *Relations) *Classification {
	c := &Classification{Hint: hint, HintErr: hintErr, Normalized: normalized}
	tree, err := pg.Parse(sql)
	if err != nil {
		c.Kind = Unknown
		c.ParseError = err
		c.Sequences = SeqMaySet
		c.Fingerprint = fallbackFingerprint(normalized)
		return c
	}
	if fp, err := pg.FingerprintToUInt64(sql); err == nil {
		c.Fingerprint = fp
	} else {
		c.Fingerprint = fallbackFingerprint(normalized)
	}
	if vol == nil {
		vol = BuiltinVolatility
	}
	a := &accumulator{c: c, sql: sql, vol: vol}
	for i, raw := range tree.Stmts {
		a.stmtFuncs = a.stmtFuncs[:0]
		k := a.statement(raw)
		c.Sequences = c.Sequences.then(sequenceUse(k, a.stmtFuncs, vol))
		c.StatementKinds = append(c.StatementKinds, k)
		if i == 0 {
			c.Kind = k
		} else {
			c.Kind = Stronger(c.Kind, k)
		}
	}
	// An empty string (or only comments) has no statement; PostgreSQL
	// answers EmptyQueryResponse. Unknown keeps it on the primary.
	if len(tree.Stmts) == 0 {
		c.Kind = Unknown
	}
	c.MultiStatement = len(tree.Stmts) > 1
	c.FixedResult = len(tree.Stmts) == 1 && fixedResult(tree.Stmts[0].Stmt)
	c.VolatileFunc = anyVolatile(c.Functions, vol)
	c.UnnamedWrites = a.unnamedWrites || anyUserVolatile(c.Functions, vol)
	rels.expand(c)
	if !c.MultiStatement && a.prepared != nil {
		rels.expand(a.prepared)
		c.Prepared = a.prepared
	}
	return c
}

func anyVolatile(funcs []string, vol VolatilityFunc) bool {
	for _, fn := range funcs {
		if v := vol(fn); v != Immutable && v != Stable {
			return true
		}
	}
	return false
}

// anyUserVolatile reports whether some function may write tables the
// text does not name: a volatile or unknown one that is not a built-in
// (the built-ins PostgreSQL calls volatile write no table).
func anyUserVolatile(funcs []string, vol VolatilityFunc) bool {
	for _, fn := range funcs {
		if v := vol(fn); v != Immutable && v != Stable && BuiltinVolatility(fn) == VolatilityUnknown {
			return true
		}
	}
	return false
}

// preparedQuery classifies the statement a PREPARE names, as it will run
// when EXECUTE runs it. Its literals decide the outer classification's
// sharing as well, since the outer one carries it.
func (a *accumulator) preparedQuery(node *pg.Node) *Classification {
	if node == nil {
		return nil
	}
	p := &Classification{}
	sub := &accumulator{c: p, sql: a.sql, vol: a.vol}
	k := sub.statement(&pg.RawStmt{Stmt: node})
	p.Kind, p.StatementKinds = k, []Kind{k}
	p.Sequences = sequenceUse(k, sub.stmtFuncs, a.vol)
	p.FixedResult = fixedResult(node)
	p.VolatileFunc = anyVolatile(p.Functions, a.vol)
	p.UnnamedWrites = sub.unnamedWrites || anyUserVolatile(p.Functions, a.vol)
	a.c.literal = a.c.literal || p.literal
	return p
}

// fixedResult reports whether node is a query whose result PostgreSQL
// fixes when it is prepared, refusing to run it once a schema change gave
// it another ("cached plan must not change result type"); a utility
// statement's result (FETCH, SHOW, EXPLAIN, CALL) may change freely.
func fixedResult(node *pg.Node) bool {
	if node == nil {
		return false
	}
	switch node.Node.(type) {
	case *pg.Node_SelectStmt, *pg.Node_InsertStmt, *pg.Node_UpdateStmt, *pg.Node_DeleteStmt, *pg.Node_MergeStmt:
		return true
	}
	return false
}

// fallbackFingerprint identifies unparseable text for stats.
func fallbackFingerprint(normalized string) uint64 {
	h := fnv.New64a()
	h.Write([]byte(normalized))
	return h.Sum64()
}

// accumulator merges per-statement facts into one Classification,
// de-duplicating names while keeping first-seen order.
type accumulator struct {
	c    *Classification
	sql  string
	vol  VolatilityFunc
	seen map[string]struct{}
	// prepared is the classification of the statement a PREPARE names.
	prepared *Classification
	// unnamedWrites: a statement may write tables it does not name.
	unnamedWrites bool
	// stmtFuncs are the functions the current statement runs.
	stmtFuncs []string
}

func (a *accumulator) add(list *[]string, prefix byte, names []string) {
	if a.seen == nil {
		a.seen = make(map[string]struct{})
	}
	for _, n := range names {
		key := string(prefix) + n
		if _, dup := a.seen[key]; dup {
			continue
		}
		a.seen[key] = struct{}{}
		*list = append(*list, n)
	}
}

// merge folds f into the classification. With asRead (plain EXPLAIN) the
// written tables are only planned against, so they count as reads.
func (a *accumulator) merge(f *facts, asRead bool) {
	a.add(&a.c.ReadTables, 'r', f.readNames())
	if asRead {
		a.add(&a.c.ReadTables, 'r', f.writes)
	} else {
		a.add(&a.c.WriteTables, 'w', f.writes)
		a.c.SelectInto = a.c.SelectInto || f.selectInto
		a.c.CopyFromClient = a.c.CopyFromClient || f.copyIn
		a.c.ModifyingCTE = a.c.ModifyingCTE || f.nestedDML
		a.c.AdvisoryLock = a.c.AdvisoryLock || f.advisory
		a.stmtFuncs = append(a.stmtFuncs, f.funcs...)
	}
	a.add(&a.c.Functions, 'f', f.funcs)
	a.c.Locking = a.c.Locking || f.locking
	a.c.Pins |= f.pins
	a.c.Releases |= f.releases
}

// statement classifies one top-level statement and merges its facts.
func (a *accumulator) statement(raw *pg.RawStmt) Kind {
	if raw.Stmt == nil {
		return Unknown
	}
	switch s := raw.Stmt.Node.(type) {
	case *pg.Node_TransactionStmt:
		return a.transaction(s.TransactionStmt)
	case *pg.Node_VariableSetStmt:
		return a.set(s.VariableSetStmt, raw)
	case *pg.Node_ExplainStmt:
		return a.explain(s.ExplainStmt)
	}
	k, f := a.query(raw.Stmt)
	a.merge(f, false)
	return k
}

// query classifies a statement node without merging, for callers that
// must look inside first (EXPLAIN, DECLARE, COPY).
func (a *accumulator) query(node *pg.Node) (Kind, *facts) {
	top := nodeValue(node)
	f := newFacts(top)

	switch s := node.Node.(type) {
	case *pg.Node_SelectStmt:
		f.walkNode(node)
		switch {
		case f.dml, f.selectInto:
			return Write, f
		}
		return Read, f
	case *pg.Node_InsertStmt, *pg.Node_UpdateStmt, *pg.Node_DeleteStmt, *pg.Node_MergeStmt:
		f.walkNode(node)
		return Write, f
	case *pg.Node_DeclareCursorStmt:
		k, inner := a.query(s.DeclareCursorStmt.Query)
		if s.DeclareCursorStmt.Options&cursorOptHold != 0 {
			inner.pins |= PinHoldCursor
			a.c.HoldCursors = append(a.c.HoldCursors, s.DeclareCursorStmt.Portalname)
		}
		return k, inner
	case *pg.Node_CopyStmt:
		return a.copy(s.CopyStmt)
	case *pg.Node_CreateTableAsStmt:
		st := s.CreateTableAsStmt
		if st.Into != nil && st.Into.Rel != nil {
			f.write(st.Into.Rel)
			if isTemp(st.Into.Rel) {
				f.pins |= PinTempTable
			}
		}
		f.walkNode(st.Query)
		f.dml, f.nestedDML = false, false
		if st.IsSelectInto {
			f.selectInto = true
			return Write, f
		}
		return DDL, f
	case *pg.Node_ViewStmt:
		st := s.ViewStmt
		f.write(st.View)
		if st.View != nil && isTemp(st.View) {
			f.pins |= PinTempTable
		}
		f.walkNode(st.Query)
		f.dml, f.nestedDML = false, false
		return DDL, f
	case *pg.Node_CreateStmt:
		f.write(s.CreateStmt.Relation)
		if s.CreateStmt.Relation != nil && isTemp(s.CreateStmt.Relation) {
			f.pins |= PinTempTable
		}
		f.walkNode(node)
		return DDL, f
	case *pg.Node_CreateSeqStmt:
		f.write(s.CreateSeqStmt.Sequence)
		if s.CreateSeqStmt.Sequence != nil && isTemp(s.CreateSeqStmt.Sequence) {
			f.pins |= PinTempTable
		}
		return DDL, f
	case *pg.Node_TruncateStmt:
		for _, r := range s.TruncateStmt.Relations {
			f.write(r.GetRangeVar())
		}
		// CASCADE empties every table that references these too.
		a.unnamedWrites = a.unnamedWrites || s.TruncateStmt.Behavior == pg.DropBehavior_DROP_CASCADE
		return Write, f
	case *pg.Node_RefreshMatViewStmt:
		f.write(s.RefreshMatViewStmt.Relation)
		return Write, f
	case *pg.Node_DropStmt:
		switch s.DropStmt.RemoveType {
		case pg.ObjectType_OBJECT_TABLE, pg.ObjectType_OBJECT_VIEW, pg.ObjectType_OBJECT_MATVIEW,
			pg.ObjectType_OBJECT_SEQUENCE, pg.ObjectType_OBJECT_FOREIGN_TABLE:
			for _, o := range s.DropStmt.Objects {
				f.writes = append(f.writes, qualifiedName(o.GetList().GetItems()))
			}
		}
		return DDL, f
	case *pg.Node_CallStmt, *pg.Node_DoStmt:
		// Procedures and anonymous blocks can do anything.
		f.walkNode(node)
		a.unnamedWrites = true
		return Write, f
	case *pg.Node_LockStmt:
		f.walkNode(node)
		f.locking = true
		return Utility, f
	case *pg.Node_ListenStmt:
		f.pins |= PinListen
		return Utility, f
	case *pg.Node_UnlistenStmt:
		f.pins |= PinUnlisten
		if s.UnlistenStmt.Conditionname == "" {
			f.releases |= PinListen // UNLISTEN *
		}
		return Utility, f
	case *pg.Node_PrepareStmt:
		f.pins |= PinPrepare
		a.c.StatementName = s.PrepareStmt.Name
		a.prepared = a.preparedQuery(s.PrepareStmt.Query)
		return Utility, f
	case *pg.Node_ExecuteStmt:
		f.pins |= PinExecute
		a.c.StatementName = s.ExecuteStmt.Name
		// What it runs is known to the session, not here (Executing).
		a.unnamedWrites = true
		f.walkNode(node) // parameters may call functions
		return Utility, f
	case *pg.Node_DeallocateStmt:
		f.pins |= PinDeallocate
		a.c.StatementName = s.DeallocateStmt.Name
		return Utility, f
	case *pg.Node_DiscardStmt:
		if s.DiscardStmt.Target == pg.DiscardMode_DISCARD_TEMP {
			f.releases |= PinTempTable
		}
		return Utility, f
	case *pg.Node_ClosePortalStmt:
		if s.ClosePortalStmt.Portalname == "" {
			f.releases |= PinHoldCursor // CLOSE ALL
		} else {
			a.c.ClosedCursors = append(a.c.ClosedCursors, s.ClosePortalStmt.Portalname)
		}
		return Utility, f
	case *pg.Node_VariableShowStmt, *pg.Node_NotifyStmt,
		*pg.Node_FetchStmt, *pg.Node_VacuumStmt,
		*pg.Node_ClusterStmt, *pg.Node_ReindexStmt, *pg.Node_CheckPointStmt,
		*pg.Node_LoadStmt, *pg.Node_ConstraintsSetStmt:
		f.walkNode(node)
		return Utility, f
	case *pg.Node_TransactionStmt, *pg.Node_VariableSetStmt, *pg.Node_ExplainStmt:
		// Only reachable nested (e.g. EXPLAIN of a non-query): treat as the
		// top-level handlers would, conservatively.
		return Unknown, f
	}
	// Everything else changes the catalog. An object made in pg_temp
	// (a type, function, domain...) lives only in this server session.
	if createsInTempSchema(node) {
		f.pins |= PinTempTable
	}
	// The statement's main relation, when it has one, is the table it
	// writes.
	if top != nil {
		if pm, ok := top.(interface {
			GetRelation() *pg.RangeVar
		}); ok {
			f.write(pm.GetRelation())
		}
	}
	f.walkNode(node)
	f.dml, f.nestedDML = false, false
	return DDL, f
}

// nodeValue unwraps a Node to the statement or expression it holds.
func nodeValue(node *pg.Node) any {
	m := node.ProtoReflect()
	fd := m.WhichOneof(m.Descriptor().Oneofs().Get(0))
	if fd == nil {
		return nil
	}
	return m.Get(fd).Message().Interface()
}

func qualifiedName(items []*pg.Node) string {
	parts := make([]string, 0, len(items))
	for _, it := range items {
		parts = append(parts, it.GetString_().GetSval())
	}
	return strings.Join(parts, ".")
}

func (a *accumulator) copy(st *pg.CopyStmt) (Kind, *facts) {
	// COPY TO a server-side file or program has an effect on the server's
	// host, so it must happen where the client expects: the primary.
	serverSide := !st.IsFrom && (st.Filename != "" || st.IsProgram)
	if st.Query != nil {
		k, f := a.query(st.Query)
		if serverSide && k == Read {
			k = Utility
		}
		return k, f
	}
	f := newFacts(st)
	if st.IsFrom {
		f.copyIn = st.Filename == "" && !st.IsProgram
		f.write(st.Relation)
		f.walkNode(st.WhereClause)
		return Write, f
	}
	if st.Relation != nil {
		f.reads = append(f.reads, st.Relation)
	}
	if serverSide {
		return Utility, f
	}
	return Read, f
}

func (a *accumulator) explain(st *pg.ExplainStmt) Kind {
	run := false
	for _, o := range st.Options {
		d := o.GetDefElem()
		if d == nil {
			continue
		}
		if d.Arg != nil {
			// EXPLAIN (ANALYZE 0) vs (ANALYZE 1) normalize alike.
			a.c.literal = true
		}
		if d.Defname == "analyze" {
			run = defBool(d.Arg, true)
		}
	}
	if st.Query == nil {
		return Unknown
	}
	k, f := a.query(st.Query)
	if !run {
		// Plain EXPLAIN only plans, which a hot standby does for any
		// statement, writes included.
		a.merge(f, true)
		return Read
	}
	a.merge(f, false)
	if k == Write || k == DDL {
		a.c.ExplainAnalyzeWrite = true
	}
	return k
}

// defBool reads a boolean option value the way PostgreSQL's defGetBoolean
// does; a missing value means true.
func defBool(arg *pg.Node, dflt bool) bool {
	if arg == nil {
		return dflt
	}
	if c := arg.GetAConst(); c != nil {
		switch {
		case c.GetIval() != nil:
			return c.GetIval().Ival != 0
		case c.GetBoolval() != nil:
			return c.GetBoolval().Boolval
		case c.GetSval() != nil:
			switch strings.ToLower(c.GetSval().Sval) {
			case "false", "off", "no", "0", "f", "n":
				return false
			}
			return true
		}
	}
	// Generic options (EXPLAIN, COPY) carry bare value nodes.
	switch {
	case arg.GetInteger() != nil:
		return arg.GetInteger().Ival != 0
	case arg.GetBoolean() != nil:
		return arg.GetBoolean().Boolval
	case arg.GetFloat() != nil:
		return arg.GetFloat().Fval != "0"
	case arg.GetString_() != nil:
		switch strings.ToLower(arg.GetString_().Sval) {
		case "false", "off", "no", "0", "f", "n":
			return false
		}
		return true
	}
	return dflt
}

func (a *accumulator) transaction(st *pg.TransactionStmt) Kind {
	switch st.Kind {
	case pg.TransactionStmtKind_TRANS_STMT_BEGIN, pg.TransactionStmtKind_TRANS_STMT_START:
		if m := accessMode(st.Options); m != AccessUnspecified {
			a.c.TxnReadOnly = m
		}
		if l := isolationLevel(st.Options); l != "" {
			a.c.TxnIsolation = l
		}
		a.c.TxnStart = st.Kind == pg.TransactionStmtKind_TRANS_STMT_START
		return TxnBegin
	case pg.TransactionStmtKind_TRANS_STMT_COMMIT:
		a.c.TxnChain = st.Chain
		return TxnCommit
	case pg.TransactionStmtKind_TRANS_STMT_ROLLBACK:
		a.c.TxnChain = st.Chain
		return TxnRollback
	case pg.TransactionStmtKind_TRANS_STMT_COMMIT_PREPARED:
		// Makes a prepared transaction's writes visible: a write as far
		// as routing and read-your-writes are concerned.
		return Write
	case pg.TransactionStmtKind_TRANS_STMT_SAVEPOINT:
		a.savepoint(SavepointDefine, st.SavepointName)
	case pg.TransactionStmtKind_TRANS_STMT_RELEASE:
		a.savepoint(SavepointRelease, st.SavepointName)
	case pg.TransactionStmtKind_TRANS_STMT_ROLLBACK_TO:
		a.savepoint(SavepointRollback, st.SavepointName)
	}
	return TxnOther
}

// savepoint records a savepoint statement among the settings, whose
// tracker must undo what a ROLLBACK TO undoes.
func (a *accumulator) savepoint(op SavepointOp, name string) {
	a.c.SetParams = append(a.c.SetParams, SetParam{Savepoint: op, SavepointName: name})
}

// accessMode reads transaction_read_only from BEGIN / SET TRANSACTION
// options.
func accessMode(opts []*pg.Node) AccessMode {
	m := AccessUnspecified
	for _, o := range opts {
		d := o.GetDefElem()
		if d == nil || d.Defname != "transaction_read_only" {
			continue
		}
		if defBool(d.Arg, true) {
			m = ReadOnly
		} else {
			m = ReadWrite
		}
	}
	return m
}

// isolationLevel reads transaction_isolation from BEGIN / SET TRANSACTION
// options: "" when they name none.
func isolationLevel(opts []*pg.Node) string {
	l := ""
	for _, o := range opts {
		if d := o.GetDefElem(); d != nil && d.Defname == "transaction_isolation" {
			l = strings.ToLower(constString(d.Arg))
		}
	}
	return l
}

// stmtText is the original text of raw without leading comments and
// trailing semicolons.
func (a *accumulator) stmtText(raw *pg.RawStmt) (text string, start, end int) {
	start = int(raw.StmtLocation)
	end = len(a.sql)
	if raw.StmtLen > 0 {
		end = start + int(raw.StmtLen)
	}
	if start < 0 || start > end || end > len(a.sql) {
		return "", 0, 0
	}
	start = skipTrivia(a.sql, start, end)
	for end > start && (isSpace(a.sql[end-1]) || a.sql[end-1] == ';') {
		end--
	}
	return a.sql[start:end], start, end
}

// skipTrivia skips whitespace and comments from i.
func skipTrivia(s string, i, end int) int {
	for i < end {
		switch {
		case isSpace(s[i]):
			i++
		case s[i] == '-' && i+1 < end && s[i+1] == '-':
			i = skipLineComment(s, i+2)
		case s[i] == '/' && i+1 < end && s[i+1] == '*':
			i = skipBlockComment(s, i+2)
		default:
			return i
		}
	}
	return i
}

func constString(n *pg.Node) string {
	if tc := n.GetTypeCast(); tc != nil && tc.Arg != nil {
		n = tc.Arg
	}
	c := n.GetAConst()
	if c == nil {
		return ""
	}
	switch {
	case c.GetSval() != nil:
		return c.GetSval().Sval
	case c.GetIval() != nil:
		return strconv.FormatInt(int64(c.GetIval().Ival), 10)
	case c.GetFval() != nil:
		return c.GetFval().Fval
	case c.GetBoolval() != nil:
		return strconv.FormatBool(c.GetBoolval().Boolval)
	case c.GetBsval() != nil:
		return c.GetBsval().Bsval
	}
	return ""
}

// createsInTempSchema reports whether node creates an object other than a
// relation (those are isTemp's) in the session's temporary schema, named
// pg_temp: CREATE FUNCTION pg_temp.f, CREATE TYPE pg_temp.t and the like.
func createsInTempSchema(node *pg.Node) bool {
	var names []*pg.Node
	switch s := node.Node.(type) {
	case *pg.Node_CreateFunctionStmt:
		names = s.CreateFunctionStmt.Funcname
	case *pg.Node_CreateEnumStmt:
		names = s.CreateEnumStmt.TypeName
	case *pg.Node_CreateRangeStmt:
		names = s.CreateRangeStmt.TypeName
	case *pg.Node_CreateDomainStmt:
		names = s.CreateDomainStmt.Domainname
	case *pg.Node_DefineStmt: // base types, aggregates, operators, ...
		names = s.DefineStmt.Defnames
	case *pg.Node_CompositeTypeStmt:
		return s.CompositeTypeStmt.Typevar != nil && isTemp(s.CompositeTypeStmt.Typevar)
	default:
		return false
	}
	return len(names) > 1 && isTempSchema(names[0].GetString_().GetSval())
}
