package parser

import (
	"context"
	"fmt"

	"github.com/jackc/pgx/v5/pgconn"
)

// Volatility is pg_proc.provolatile. Immutable and Stable functions give
// the same answer on a replica as on the primary within a statement and have
// no side effects; Volatile ones may do anything.
type Volatility uint8

const (
	// VolatilityUnknown: not found. Routing treats it as Volatile.
	VolatilityUnknown Volatility = iota
	Immutable
	Stable
	Volatile
)

func (v Volatility) String() string {
	switch v {
	case Immutable:
		return "immutable"
	case Stable:
		return "stable"
	case Volatile:
		return "volatile"
	}
	return "unknown"
}

// VolatilityFunc reports the volatility of a function named as in
// Classification.Functions ("now", "pg_catalog.now", "myschema.f").
type VolatilityFunc func(name string) Volatility

// RowsFunc runs one query and returns its rows as text columns. It lets
// LoadVolatility run over any connection type; PgConnRows adapts a
// *pgconn.PgConn.
type RowsFunc func(ctx context.Context, sql string) ([][]string, error)

// PgConnRows runs queries over conn with the simple protocol.
func PgConnRows(conn *pgconn.PgConn) RowsFunc {
	return func(ctx context.Context, sql string) ([][]string, error) {
		results, err := conn.Exec(ctx, sql).ReadAll()
		if err != nil {
			return nil, err
		}
		var rows [][]string
		for _, r := range results {
			if r.Err != nil {
				return nil, r.Err
			}
			for _, row := range r.Rows {
				cols := make([]string, len(row))
				for i, col := range row {
					cols[i] = string(col)
				}
				rows = append(rows, cols)
			}
		}
		return rows, nil
	}
}

// volatilityQuery lists every function with its schema. Overloads share a
// name, so one name can have several volatilities.
const volatilityQuery = `SELECT n.nspname, p.proname, p.provolatile
FROM pg_catalog.pg_proc p JOIN pg_catalog.pg_namespace n ON n.oid = p.pronamespace`

// LoadVolatility reads pg_proc through query (run it against the primary;
// the map is per database) and returns volatility by both "name" and
// "schema.name". When overloads or same-named functions in different
// schemas disagree, the most volatile wins: the classifier cannot tell
// which overload or search_path entry a call resolves to, and erring
// towards "volatile" only costs a trip to the primary.
func LoadVolatility(ctx context.Context, query RowsFunc) (map[string]Volatility, error) {
	rows, err := query(ctx, volatilityQuery)
	if err != nil {
		return nil, fmt.Errorf("load function volatility: %w", err)
	}
	m := make(map[string]Volatility, 2*len(rows))
	for _, r := range rows {
		if len(r) != 3 {
			return nil, fmt.Errorf("load function volatility: got %d columns, want 3", len(r))
		}
		v := volatilityCode(r[2])
		for _, key := range []string{r[1], r[0] + "." + r[1]} {
			if cur, ok := m[key]; !ok || worse(v, cur) {
				m[key] = v
			}
		}
	}
	return m, nil
}

func volatilityCode(s string) Volatility {
	switch s {
	case "i":
		return Immutable
	case "s":
		return Stable
	case "v":
		return Volatile
	}
	return VolatilityUnknown
}

// worse reports whether a is more dangerous to run on a replica than b.
func worse(a, b Volatility) bool { return rank(a) > rank(b) }

func rank(v Volatility) int {
	switch v {
	case Immutable:
		return 0
	case Stable:
		return 1
	case Volatile:
		return 2
	}
	return 3
}

// VolatilityLookup answers from a map loaded by LoadVolatility, falling
// back to the built-in table for names the map lacks (or when m is nil).
// Functions that cannot run on a standby count as volatile regardless.
func VolatilityLookup(m map[string]Volatility) VolatilityFunc {
	return func(name string) Volatility {
		if primaryOnly(name) {
			return Volatile
		}
		if v, ok := m[name]; ok {
			return v
		}
		return BuiltinVolatility(name)
	}
}
