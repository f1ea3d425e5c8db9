package parser

import (
	"strings"

	pg "github.com/pganalyze/pg_query_go/v5"
)

// Signal is a statement that does nothing but signal server processes by
// process ID:
//
//	SELECT pg_terminate_backend(12345)
//	SELECT pg_cancel_backend($1)
//	SELECT pg_terminate_backend(n) FROM unnest($1::int[]) n
//
// A pooler gives its clients process IDs of its own, which name no server
// process; it can answer such a statement itself when the IDs are its
// clients'.
type Signal struct {
	// Terminate: pg_terminate_backend; otherwise pg_cancel_backend.
	Terminate bool
	// Column is the result column's name.
	Column string
	// Param is the 1-based parameter that holds the process ID, or the
	// array of them with Array; 0 when PIDs hold them.
	Param int
	// PIDs are the process IDs written as constants.
	PIDs []int64
	// Array: one row per element of an array (unnest), rather than one.
	Array bool
}

// ParseSignal reports whether sql is exactly one Signal statement, in one
// of the forms above, and returns it.
func ParseSignal(sql string) (*Signal, bool) {
	tree, err := pg.Parse(sql)
	if err != nil || len(tree.Stmts) != 1 || tree.Stmts[0].Stmt == nil {
		return nil, false
	}
	sel := tree.Stmts[0].Stmt.GetSelectStmt()
	if sel == nil || sel.Op != pg.SetOperation_SETOP_NONE || sel.WithClause != nil || sel.IntoClause != nil ||
		len(sel.DistinctClause) > 0 || sel.WhereClause != nil || len(sel.GroupClause) > 0 || sel.HavingClause != nil ||
		len(sel.WindowClause) > 0 || len(sel.ValuesLists) > 0 || len(sel.SortClause) > 0 ||
		sel.LimitCount != nil || sel.LimitOffset != nil || len(sel.LockingClause) > 0 || len(sel.TargetList) != 1 {
		return nil, false
	}
	target := sel.TargetList[0].GetResTarget()
	if target == nil {
		return nil, false
	}
	call := target.Val.GetFuncCall()
	name, ok := signalFunc(call)
	if !ok {
		return nil, false
	}
	sig := &Signal{Terminate: name == "pg_terminate_backend", Column: name}
	if target.Name != "" {
		sig.Column = target.Name
	}
	switch len(sel.FromClause) {
	case 0:
		param, pid, ok := intArg(call.Args[0])
		if !ok {
			return nil, false
		}
		sig.Param = param
		if param == 0 {
			sig.PIDs = []int64{pid}
		}
		return sig, true
	case 1:
		if sig.fromUnnest(sel.FromClause[0].GetRangeFunction(), call.Args[0]) {
			return sig, true
		}
	}
	return nil, false
}

// signalFunc names the signalling function call calls, if it is one with
// arguments of the expected number (pg_terminate_backend's second is a
// timeout, which a pooler's clients end within anyway).
func signalFunc(call *pg.FuncCall) (string, bool) {
	if call == nil || call.AggStar || call.AggDistinct || call.FuncVariadic || call.Over != nil ||
		call.AggFilter != nil || len(call.AggOrder) > 0 || len(call.Funcname) == 0 || len(call.Funcname) > 2 {
		return "", false
	}
	if len(call.Funcname) == 2 && call.Funcname[0].GetString_().GetSval() != "pg_catalog" {
		return "", false
	}
	name := call.Funcname[len(call.Funcname)-1].GetString_().GetSval()
	switch {
	case name == "pg_cancel_backend" && len(call.Args) == 1:
	case name == "pg_terminate_backend" && len(call.Args) == 1:
	case name == "pg_terminate_backend" && len(call.Args) == 2:
		if _, _, ok := intArg(call.Args[1]); !ok {
			return "", false
		}
	default:
		return "", false
	}
	return name, true
}

// fromUnnest accepts FROM unnest(array) alias, with arg a reference to its
// one column.
func (sig *Signal) fromUnnest(rf *pg.RangeFunction, arg *pg.Node) bool {
	if rf == nil || rf.Lateral || rf.Ordinality || rf.IsRowsfrom || len(rf.Coldeflist) > 0 ||
		rf.Alias == nil || len(rf.Functions) != 1 {
		return false
	}
	items := rf.Functions[0].GetList().GetItems()
	// The second item is a column definition list, which the alias
	// form has none of.
	if len(items) != 2 || len(items[1].GetList().GetItems()) > 0 {
		return false
	}
	unnest := items[0].GetFuncCall()
	if unnest == nil || len(unnest.Args) != 1 || len(unnest.Funcname) == 0 || len(unnest.Funcname) > 2 ||
		unnest.Funcname[len(unnest.Funcname)-1].GetString_().GetSval() != "unnest" ||
		(len(unnest.Funcname) == 2 && unnest.Funcname[0].GetString_().GetSval() != "pg_catalog") {
		return false
	}
	alias, column := rf.Alias.Aliasname, rf.Alias.Aliasname
	switch len(rf.Alias.Colnames) {
	case 0:
	case 1:
		column = rf.Alias.Colnames[0].GetString_().GetSval()
	default:
		return false
	}
	if !refersTo(arg, alias, column) {
		return false
	}
	param, pids, ok := intArrayArg(unnest.Args[0])
	if !ok {
		return false
	}
	sig.Array, sig.Param, sig.PIDs = true, param, pids
	return true
}

// refersTo reports whether n is the column alias.column, written as
// column, alias or alias.column.
func refersTo(n *pg.Node, alias, column string) bool {
	ref := n.GetColumnRef()
	if ref == nil {
		return false
	}
	var parts []string
	for _, f := range ref.Fields {
		s := f.GetString_()
		if s == nil {
			return false // a star
		}
		parts = append(parts, s.Sval)
	}
	switch len(parts) {
	case 1:
		return parts[0] == column || parts[0] == alias
	case 2:
		return parts[0] == alias && parts[1] == column
	}
	return false
}

// intArg reads an integer constant or a parameter, either possibly cast to
// an integer type: param is the parameter's number, or 0 for a constant.
func intArg(n *pg.Node) (param int, v int64, ok bool) {
	if tc := n.GetTypeCast(); tc != nil {
		if !isIntType(tc.TypeName, false) {
			return 0, 0, false
		}
		n = tc.Arg
	}
	if p := n.GetParamRef(); p != nil {
		return int(p.Number), 0, p.Number > 0
	}
	if c := n.GetAConst(); c != nil && !c.Isnull && c.GetIval() != nil {
		return 0, int64(c.GetIval().Ival), true
	}
	return 0, 0, false
}

// intArrayArg reads a parameter cast to an integer array type, or an
// ARRAY[...] of integer constants.
func intArrayArg(n *pg.Node) (param int, pids []int64, ok bool) {
	if tc := n.GetTypeCast(); tc != nil {
		if !isIntType(tc.TypeName, true) {
			return 0, nil, false
		}
		n = tc.Arg
		if p := n.GetParamRef(); p != nil && p.Number > 0 {
			return int(p.Number), nil, true
		}
	}
	arr := n.GetAArrayExpr()
	if arr == nil || len(arr.Elements) == 0 {
		return 0, nil, false
	}
	for _, e := range arr.Elements {
		param, v, ok := intArg(e)
		if !ok || param != 0 {
			return 0, nil, false
		}
		pids = append(pids, v)
	}
	return 0, pids, true
}

// isIntType reports whether tn is an integer type that converts to the
// functions' integer argument, or with array an array of one. (bigint does
// not: PostgreSQL finds no such function.)
func isIntType(tn *pg.TypeName, array bool) bool {
	if tn == nil || tn.Setof || len(tn.Names) == 0 || (len(tn.ArrayBounds) == 1) != array || len(tn.ArrayBounds) > 1 {
		return false
	}
	name := strings.ToLower(tn.Names[len(tn.Names)-1].GetString_().GetSval())
	switch name {
	case "int2", "int4", "integer", "smallint":
		return true
	}
	return false
}
