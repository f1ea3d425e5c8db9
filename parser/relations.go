package parser

import (
	"context"
	"fmt"
	"reflect"
	"strings"
)

// Relations is what a database's catalog says about the relations a
// statement names that its text does not: the tables a read or a write of
// a named relation reaches besides it. The classifier adds them to a
// classification's tables, so that table consistency waits for the right
// writes: a read of a view waits for writes to its tables, a write to a
// partition (or an inheriting table) counts for reads of the tables above
// it, a DELETE of a parent for reads of the children its foreign keys
// cascade to.
//
// Relations are keyed by unqualified name, as the router's LSN tracker
// keys tables: same-named relations of different schemas are merged,
// which can only make reads wait for more writes than they need to.
type Relations struct {
	views    map[string][]string // view → the relations its query reads
	parents  map[string][]string // partition or inheriting table → every table it belongs to
	cascades map[string][]string // table → tables its referencing foreign keys' actions write
	// unnamed: a write of the relation may reach tables no name tells:
	// it has a trigger whose function is volatile (one that is not may
	// not write, as PostgreSQL enforces for PL/pgSQL and SQL), or a rule.
	unnamed map[string]bool
}

// relationsQuery lists one edge per row: kind, relation, the relation it
// reaches. System schemas are left out: writes through the proxy do not
// change their rows except by DDL, which every read waits for anyway.
const relationsQuery = `WITH RECURSIVE rel AS (
  SELECT c.oid, c.relname, c.relkind FROM pg_catalog.pg_class c
  JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
  WHERE c.relkind IN ('r', 'p', 'v', 'm', 'f')
    AND n.nspname NOT IN ('pg_catalog', 'information_schema') AND n.nspname NOT LIKE 'pg\_toast%'
), up (child, parent) AS (
  SELECT inhrelid, inhparent FROM pg_catalog.pg_inherits
  UNION SELECT up.child, i.inhparent FROM up JOIN pg_catalog.pg_inherits i ON i.inhrelid = up.parent
)
SELECT DISTINCT 'view', v.relname, b.relname FROM rel v
  JOIN pg_catalog.pg_rewrite w ON w.ev_class = v.oid
  JOIN pg_catalog.pg_depend d ON d.classid = 'pg_catalog.pg_rewrite'::pg_catalog.regclass AND d.objid = w.oid
    AND d.refclassid = 'pg_catalog.pg_class'::pg_catalog.regclass
  JOIN pg_catalog.pg_class b ON b.oid = d.refobjid
  WHERE v.relkind = 'v' AND b.oid <> v.oid AND b.relkind IN ('r', 'p', 'v', 'm', 'f')
UNION ALL
SELECT DISTINCT 'parent', c.relname, p.relname FROM up
  JOIN rel c ON c.oid = up.child
  JOIN pg_catalog.pg_class p ON p.oid = up.parent
UNION ALL
SELECT DISTINCT 'cascade', t.relname, ch.relname FROM rel t
  JOIN pg_catalog.pg_constraint k ON k.confrelid = t.oid AND k.contype = 'f'
  JOIN pg_catalog.pg_class ch ON ch.oid = k.conrelid
  WHERE k.confdeltype IN ('c', 'n', 'd') OR k.confupdtype IN ('c', 'n', 'd')
UNION ALL
SELECT 'unnamed', t.relname, '' FROM rel t
  WHERE EXISTS (SELECT FROM pg_catalog.pg_trigger g JOIN pg_catalog.pg_proc f ON f.oid = g.tgfoid
                WHERE g.tgrelid = t.oid AND NOT g.tgisinternal AND f.provolatile = 'v')
     OR EXISTS (SELECT FROM pg_catalog.pg_rewrite w WHERE w.ev_class = t.oid AND w.ev_type <> '1')
ORDER BY 1, 2, 3`

// LoadRelations reads the catalog through query (run it against the
// primary; the answer is per database).
func LoadRelations(ctx context.Context, query RowsFunc) (*Relations, error) {
	rows, err := query(ctx, relationsQuery)
	if err != nil {
		return nil, fmt.Errorf("load relations: %w", err)
	}
	r := &Relations{views: map[string][]string{}, parents: map[string][]string{},
		cascades: map[string][]string{}, unnamed: map[string]bool{}}
	for _, row := range rows {
		if len(row) != 3 {
			return nil, fmt.Errorf("load relations: got %d columns, want 3", len(row))
		}
		r.add(row[0], row[1], row[2])
	}
	return r, nil
}

// add records one edge of relationsQuery's kind.
func (r *Relations) add(kind, rel, to string) {
	switch kind {
	case "view":
		r.views[rel] = append(r.views[rel], to)
	case "parent":
		r.parents[rel] = append(r.parents[rel], to)
	case "cascade":
		r.cascades[rel] = append(r.cascades[rel], to)
	case "unnamed":
		r.unnamed[rel] = true
	}
}

// Equal reports whether r and o say the same (relationsQuery orders its
// rows, so the same catalog gives the same lists).
func (r *Relations) Equal(o *Relations) bool { return reflect.DeepEqual(r, o) }

// Len is the number of relations that reach others or unnamed tables.
func (r *Relations) Len() int {
	if r == nil {
		return 0
	}
	return len(r.views) + len(r.parents) + len(r.cascades) + len(r.unnamed)
}

// expand adds to c's tables those its named relations reach, and marks a
// write that reaches tables nothing names. c is the classifier's own,
// not yet shared.
func (r *Relations) expand(c *Classification) {
	if r == nil {
		return
	}
	c.ReadTables = r.reached(c.ReadTables, false, nil)
	c.WriteTables = r.reached(c.WriteTables, true, &c.UnnamedWrites)
}

// reached is names followed by the relations they reach: a view's
// relations, the tables a partition or inheriting table belongs to, and
// for a write the tables cascades write.
func (r *Relations) reached(names []string, write bool, unnamed *bool) []string {
	var seen map[string]bool
	for i := 0; i < len(names); i++ {
		k := TableKey(names[i])
		add := func(more []string) {
			for _, n := range more {
				if seen == nil {
					seen = make(map[string]bool, len(names))
					for _, n := range names {
						seen[TableKey(n)] = true
					}
				}
				if !seen[n] {
					seen[n] = true
					names = append(names, n)
				}
			}
		}
		add(r.views[k])
		add(r.parents[k])
		if write {
			add(r.cascades[k])
			if r.unnamed[k] {
				*unnamed = true
			}
		}
	}
	return names
}

// TableKey is the relation name without its schema: how Relations and the
// router's LSN tracker key tables, which must agree.
func TableKey(name string) string {
	if i := strings.LastIndexByte(name, '.'); i >= 0 {
		return name[i+1:]
	}
	return name
}
