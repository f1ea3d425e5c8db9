package parser

import (
	"strings"

	pg "github.com/pganalyze/pg_query_go/v5"
)

// set classifies SET / RESET / SET TRANSACTION / SET SESSION
// CHARACTERISTICS. Values matter to the session tracker, so such
// classifications are never shared between texts that differ in literals.
func (a *accumulator) set(st *pg.VariableSetStmt, raw *pg.RawStmt) Kind {
	a.c.literal = true
	text, _, end := a.stmtText(raw)
	kind := Set
	if st.IsLocal {
		kind = SetLocal
	}

	switch st.Kind {
	case pg.VariableSetKind_VAR_SET_MULTI:
		switch st.Name {
		case "TRANSACTION":
			if m := accessMode(st.Args); m != AccessUnspecified {
				a.c.TxnReadOnly = m
			}
			if l := isolationLevel(st.Args); l != "" {
				a.c.TxnIsolation = l
			}
			return TxnOther
		case "SESSION CHARACTERISTICS":
			// SET SESSION CHARACTERISTICS AS TRANSACTION READ ONLY is
			// SET default_transaction_read_only = on in disguise.
			for _, arg := range st.Args {
				d := arg.GetDefElem()
				if d == nil {
					continue
				}
				p := SetParam{Name: "default_" + d.Defname, Stmt: text}
				if d.Defname == "transaction_isolation" {
					p.Value = constString(d.Arg)
				} else if defBool(d.Arg, true) {
					p.Value = "on"
				} else {
					p.Value = "off"
				}
				p.Values = []string{p.Value}
				a.c.SetParams = append(a.c.SetParams, p)
			}
			return Set
		}
		return kind
	case pg.VariableSetKind_VAR_RESET_ALL:
		a.c.SetParams = append(a.c.SetParams, SetParam{ResetAll: true, Stmt: text})
		// RESET ALL resets every settable parameter, our own included.
		a.c.SessionRoute, a.c.RouteReset = HintAuto, true
		return Set
	}

	name := strings.ToLower(st.Name)
	p := SetParam{Name: name, Local: st.IsLocal, Stmt: text}
	switch st.Kind {
	case pg.VariableSetKind_VAR_SET_VALUE:
		for _, arg := range st.Args {
			p.Values = append(p.Values, constString(arg))
		}
		if len(st.Args) > 0 {
			if loc := minLocation(st.ProtoReflect()); loc >= 0 && int(loc) < end {
				p.Value = strings.TrimRight(a.sql[loc:end], " \t\r\n\f\v;")
			}
		}
	case pg.VariableSetKind_VAR_SET_DEFAULT, pg.VariableSetKind_VAR_RESET:
		p.Reset = true
	case pg.VariableSetKind_VAR_SET_CURRENT:
		p.FromCurrent = true
	}

	if name == RouteParam {
		a.routeParam(p)
		return kind
	}
	if (name == "role" || name == "session_authorization") && !st.IsLocal &&
		st.Kind == pg.VariableSetKind_VAR_SET_VALUE {
		a.c.Pins |= PinRole
	}
	a.c.SetParams = append(a.c.SetParams, p)
	return kind
}

// routeParam handles SET pgninja.route: a routing instruction to the
// proxy, not a server setting, so it is reported in SessionRoute instead of
// SetParams. SET LOCAL is validated but has no effect: by the time it runs
// the transaction is already placed.
func (a *accumulator) routeParam(p SetParam) {
	h := HintAuto
	if !p.Reset && !p.FromCurrent {
		v := strings.Join(p.Values, ", ")
		var err error
		if h, err = ParseHint(v, HintSourceSet); err != nil {
			a.c.HintErr = err
			return
		}
	}
	if !p.Local {
		a.c.SessionRoute, a.c.RouteReset = h, p.Reset
	}
}
