package parser

import (
	"strings"
	"sync"

	pg "github.com/pganalyze/pg_query_go/v5"
	"google.golang.org/protobuf/reflect/protoreflect"
)

// facts is what a walk over one statement's tree found. Statement handlers
// turn facts into a Kind; the classification merges them.
type facts struct {
	top        any // the statement being walked; DML below it is a CTE
	reads      []*pg.RangeVar
	writes     []string
	written    map[*pg.RangeVar]struct{} // targets, not to be counted as reads
	ctes       map[string]struct{}
	funcs      []string
	dml        bool // some INSERT/UPDATE/DELETE/MERGE runs
	nestedDML  bool // ...below the top statement (a data-modifying CTE)
	locking    bool
	selectInto bool
	copyIn     bool // COPY FROM STDIN
	pins       Pins
	releases   Pins // see Classification.Releases
	advisory   bool // see Classification.AdvisoryLock
}

func newFacts(top any) *facts { return &facts{top: top} }

// walk visits every message under m. It is generic (protoreflect) so that
// tables and function calls are found wherever PostgreSQL's grammar lets
// them appear, including node types added in later parser versions; only
// the nodes whose meaning depends on their position are special-cased.
func (f *facts) walk(m protoreflect.Message) {
	if !m.IsValid() {
		return
	}
	switch n := m.Interface().(type) {
	case *pg.RangeVar:
		if _, ok := f.written[n]; !ok {
			f.reads = append(f.reads, n)
		}
		return
	case *pg.LockingClause:
		// Its locked_rels are aliases already counted in FROM.
		f.locking = true
		return
	case *pg.FuncCall:
		f.funcCall(n)
	case *pg.CommonTableExpr:
		if f.ctes == nil {
			f.ctes = make(map[string]struct{})
		}
		f.ctes[n.Ctename] = struct{}{}
	case *pg.InsertStmt:
		f.modifies(n, n.Relation)
	case *pg.UpdateStmt:
		f.modifies(n, n.Relation)
	case *pg.DeleteStmt:
		f.modifies(n, n.Relation)
	case *pg.MergeStmt:
		f.modifies(n, n.Relation)
	case *pg.SelectStmt:
		if n.IntoClause != nil && n.IntoClause.Rel != nil {
			f.selectInto = true
			f.write(n.IntoClause.Rel)
			if isTemp(n.IntoClause.Rel) {
				f.pins |= PinTempTable
			}
		}
	}
	for _, it := range walkPlanOf(m.Descriptor()) {
		fd := it.field
		if it.oneof != nil {
			if fd = m.WhichOneof(it.oneof); fd == nil || fd.Message() == nil || fd.IsMap() {
				continue
			}
		} else if !m.Has(fd) {
			continue
		}
		v := m.Get(fd)
		if fd.IsList() {
			l := v.List()
			for i := 0; i < l.Len(); i++ {
				f.walk(l.Get(i).Message())
			}
		} else {
			f.walk(v.Message())
		}
	}
}

// walkItem is a message-typed field of a node, or a oneof to look into.
type walkItem struct {
	field protoreflect.FieldDescriptor
	oneof protoreflect.OneofDescriptor
}

// walkPlans caches, per node type, the fields walk visits in the order of
// their declaration. Message.Range would be simpler, but its order is
// deliberately unstable (it changes from one build of the binary to the
// next), and tables must be listed in the same order every time.
var walkPlans sync.Map // protoreflect.FullName -> []walkItem

func walkPlanOf(md protoreflect.MessageDescriptor) []walkItem {
	if p, ok := walkPlans.Load(md.FullName()); ok {
		return p.([]walkItem)
	}
	var plan []walkItem
	fields := md.Fields()
	for i := 0; i < fields.Len(); i++ {
		fd := fields.Get(i)
		if od := fd.ContainingOneof(); od != nil && !od.IsSynthetic() {
			if od.Fields().Get(0) == fd {
				plan = append(plan, walkItem{oneof: od})
			}
			continue
		}
		if fd.Message() != nil && !fd.IsMap() {
			plan = append(plan, walkItem{field: fd})
		}
	}
	walkPlans.Store(md.FullName(), plan)
	return plan
}

func (f *facts) walkNode(n *pg.Node) {
	if n != nil {
		f.walk(n.ProtoReflect())
	}
}

func (f *facts) modifies(stmt any, rel *pg.RangeVar) {
	f.dml = true
	if stmt != f.top {
		f.nestedDML = true
	}
	f.write(rel)
}

// write records rel as written and keeps it out of the read set.
func (f *facts) write(rel *pg.RangeVar) {
	if rel == nil {
		return
	}
	if f.written == nil {
		f.written = make(map[*pg.RangeVar]struct{})
	}
	f.written[rel] = struct{}{}
	f.writes = append(f.writes, relName(rel))
}

func (f *facts) funcCall(n *pg.FuncCall) {
	parts := make([]string, 0, len(n.Funcname))
	for _, p := range n.Funcname {
		parts = append(parts, p.GetString_().GetSval())
	}
	// EXTRACT(...), x AT TIME ZONE y etc. are grammar sugar that the parser
	// qualifies with pg_catalog; report them as the user would name them.
	if n.Funcformat == pg.CoercionForm_COERCE_SQL_SYNTAX && len(parts) == 2 && parts[0] == "pg_catalog" {
		parts = parts[1:]
	}
	name := strings.Join(parts, ".")
	f.funcs = append(f.funcs, name)
	switch unqualified(name) {
	case "pg_advisory_lock", "pg_advisory_lock_shared", "pg_try_advisory_lock", "pg_try_advisory_lock_shared":
		f.pins |= PinAdvisoryLock
		f.advisory = true
	case "pg_advisory_xact_lock", "pg_advisory_xact_lock_shared", "pg_try_advisory_xact_lock", "pg_try_advisory_xact_lock_shared":
		f.advisory = true
	case "pg_advisory_unlock_all":
		f.releases |= PinAdvisoryLock
	case "set_config":
		// set_config(name, value, true) only lasts for the transaction.
		// TRUE/FALSE are keywords, not literals, so they survive
		// normalization and this stays a property of the cache key.
		if len(n.Args) != 3 || !isTrueKeyword(n.Args[2]) {
			f.pins |= PinSetConfig
		}
	}
}

func isTrueKeyword(n *pg.Node) bool {
	c := n.GetAConst()
	return c != nil && c.GetBoolval() != nil && c.GetBoolval().Boolval
}

// readNames returns the names of tables read, without CTE references.
func (f *facts) readNames() []string {
	out := make([]string, 0, len(f.reads))
	for _, r := range f.reads {
		if r.Schemaname == "" && r.Catalogname == "" {
			if _, isCTE := f.ctes[r.Relname]; isCTE {
				continue
			}
		}
		out = append(out, relName(r))
	}
	return out
}

func relName(r *pg.RangeVar) string {
	switch {
	case r.Catalogname != "":
		return r.Catalogname + "." + r.Schemaname + "." + r.Relname
	case r.Schemaname != "":
		return r.Schemaname + "." + r.Relname
	}
	return r.Relname
}

func isTemp(r *pg.RangeVar) bool {
	return r.Relpersistence == "t" || isTempSchema(r.Schemaname)
}

// isTempSchema: pg_temp names the session's temporary schema, as does its
// real name, pg_temp_N.
func isTempSchema(name string) bool {
	return name == "pg_temp" || strings.HasPrefix(name, "pg_temp_")
}

// unqualified strips a "pg_catalog." prefix: built-ins are the same
// function whichever way they are called.
func unqualified(name string) string {
	return strings.TrimPrefix(name, "pg_catalog.")
}

// minLocation is the smallest source offset recorded anywhere under m, or
// -1: it finds where a SET value starts in the original text, however the
// grammar shaped it (constants, typed intervals, lists).
func minLocation(m protoreflect.Message) int32 {
	best := int32(-1)
	var visit func(protoreflect.Message)
	visit = func(m protoreflect.Message) {
		m.Range(func(fd protoreflect.FieldDescriptor, v protoreflect.Value) bool {
			switch {
			case fd.Name() == "location" && fd.Kind() == protoreflect.Int32Kind:
				if loc := int32(v.Int()); loc >= 0 && (best < 0 || loc < best) {
					best = loc
				}
			case fd.Message() != nil && fd.IsList():
				l := v.List()
				for i := 0; i < l.Len(); i++ {
					visit(l.Get(i).Message())
				}
			case fd.Message() != nil && !fd.IsMap():
				visit(v.Message())
			}
			return true
		})
	}
	visit(m)
	return best
}
