package parser

import (
	"fmt"
	"strings"
	"sync"
	"testing"
)

func TestClassifierSharesLiteralVariants(t *testing.T) {
	c := NewClassifier(100, nil)
	a := c.Classify("SELECT abalance FROM pgbench_accounts WHERE aid = 1;")
	b := c.Classify("SELECT   abalance FROM pgbench_accounts WHERE aid = 99999 -- x")
	if a != b {
		t.Fatalf("literal variants got different classifications: %+v vs %+v", a, b)
	}
	if a.Normalized != "SELECT abalance FROM pgbench_accounts WHERE aid = $1" {
		t.Errorf("Normalized = %q", a.Normalized)
	}
	if a.Fingerprint == 0 {
		t.Error("Fingerprint is zero")
	}
}

func TestClassifierKeepsLiteralSensitiveValues(t *testing.T) {
	c := NewClassifier(100, nil)
	cases := []struct {
		sql   string
		name  string
		value string
		vals  []string
	}{
		{"SET search_path = 'x'", "search_path", "'x'", []string{"x"}},
		{"SET search_path = 'y'", "search_path", "'y'", []string{"y"}},
		{"SET search_path TO a, \"B\";", "search_path", "a, \"B\"", []string{"a", "B"}},
		{"SET TIME ZONE 'UTC'", "timezone", "'UTC'", []string{"UTC"}},
		{"SET TIME ZONE 'Europe/Berlin'", "timezone", "'Europe/Berlin'", []string{"Europe/Berlin"}},
		{"SET statement_timeout = 5000", "statement_timeout", "5000", []string{"5000"}},
		{"SET statement_timeout = 6000", "statement_timeout", "6000", []string{"6000"}},
		{"/* pgninja:primary */ SET statement_timeout = 7000", "statement_timeout", "7000", []string{"7000"}},
		{"SET TIME ZONE INTERVAL '-08:00' HOUR TO MINUTE", "timezone", "INTERVAL '-08:00' HOUR TO MINUTE", []string{"-08:00"}},
	}
	for range 2 { // second round is served from the caches
		for _, tc := range cases {
			got := c.Classify(tc.sql)
			if len(got.SetParams) != 1 {
				t.Fatalf("%q: SetParams = %+v", tc.sql, got.SetParams)
			}
			p := got.SetParams[0]
			if p.Name != tc.name || p.Value != tc.value || fmt.Sprint(p.Values) != fmt.Sprint(tc.vals) {
				t.Errorf("%q: got %+v, want name %q value %q values %q", tc.sql, p, tc.name, tc.value, tc.vals)
			}
		}
	}
	r1 := c.Classify("SET pgninja.route = 'replica'")
	r2 := c.Classify("SET pgninja.route = 'primary'")
	r3 := c.Classify("SET pgninja.route = 'nope'")
	if r1.SessionRoute != HintReplica || r2.SessionRoute != HintPrimary || r3.HintErr == nil {
		t.Errorf("pgninja.route: %v %v %v", r1.SessionRoute, r2.SessionRoute, r3.HintErr)
	}
	e1 := c.Classify("EXPLAIN (ANALYZE 0) DELETE FROM t")
	e2 := c.Classify("EXPLAIN (ANALYZE 1) DELETE FROM t")
	if e1.Kind != Read || e2.Kind != Write {
		t.Errorf("EXPLAIN (ANALYZE n): %v, %v", e1.Kind, e2.Kind)
	}
}

func TestSetParamDetails(t *testing.T) {
	cases := []struct {
		sql  string
		want SetParam
	}{
		{"SET LOCAL work_mem = '64MB'", SetParam{Name: "work_mem", Value: "'64MB'", Values: []string{"64MB"}, Stmt: "SET LOCAL work_mem = '64MB'", Local: true}},
		{"RESET work_mem", SetParam{Name: "work_mem", Stmt: "RESET work_mem", Reset: true}},
		{"SET work_mem TO DEFAULT", SetParam{Name: "work_mem", Stmt: "SET work_mem TO DEFAULT", Reset: true}},
		{"RESET ALL", SetParam{Stmt: "RESET ALL", ResetAll: true}},
		{"SET search_path FROM CURRENT", SetParam{Name: "search_path", Stmt: "SET search_path FROM CURRENT", FromCurrent: true}},
		{"/* c */ SET application_name = 'x'; ", SetParam{Name: "application_name", Value: "'x'", Values: []string{"x"}, Stmt: "SET application_name = 'x'"}},
		{"SET SESSION CHARACTERISTICS AS TRANSACTION READ ONLY", SetParam{Name: "default_transaction_read_only", Value: "on", Values: []string{"on"}, Stmt: "SET SESSION CHARACTERISTICS AS TRANSACTION READ ONLY"}},
		{"SET default_transaction_read_only = on", SetParam{Name: "default_transaction_read_only", Value: "on", Values: []string{"on"}, Stmt: "SET default_transaction_read_only = on"}},
		{"SET ROLE admin", SetParam{Name: "role", Value: "admin", Values: []string{"admin"}, Stmt: "SET ROLE admin"}},
		{"SAVEPOINT s1", SetParam{Savepoint: SavepointDefine, SavepointName: "s1"}},
		{"RELEASE SAVEPOINT s1", SetParam{Savepoint: SavepointRelease, SavepointName: "s1"}},
		{"release s1", SetParam{Savepoint: SavepointRelease, SavepointName: "s1"}},
		{`ROLLBACK TO SAVEPOINT "S 1"`, SetParam{Savepoint: SavepointRollback, SavepointName: "S 1"}},
		{"rollback to s1", SetParam{Savepoint: SavepointRollback, SavepointName: "s1"}},
	}
	for _, tc := range cases {
		got := Analyze(tc.sql, nil)
		if len(got.SetParams) != 1 || fmt.Sprintf("%+v", got.SetParams[0]) != fmt.Sprintf("%+v", tc.want) {
			t.Errorf("%q:\n got %+v\nwant %+v", tc.sql, got.SetParams, tc.want)
		}
	}
	multi := Analyze("SET a.b = 1; SET LOCAL c.d = 'x'; RESET ALL", nil)
	if len(multi.SetParams) != 3 || multi.SetParams[1].Stmt != "SET LOCAL c.d = 'x'" || multi.Kind != Set {
		t.Errorf("multi SET: %+v kind %v", multi.SetParams, multi.Kind)
	}
	if got := Analyze("SET pgninja.route = 'replica'", nil); len(got.SetParams) != 0 {
		t.Errorf("pgninja.route must not be a server parameter: %+v", got.SetParams)
	}
}

func TestClassifierHintIsPartOfKey(t *testing.T) {
	c := NewClassifier(100, nil)
	plain := c.Classify("SELECT * FROM users WHERE id = 1")
	hinted := c.Classify("/* pgninja:primary */ SELECT * FROM users WHERE id = 2")
	replica := c.Classify("/* pgninja:replica */ SELECT * FROM users WHERE id = 3")
	bad := c.Classify("/* pgninja:bogus */ SELECT * FROM users WHERE id = 4")
	if plain.Hint != HintNone || hinted.Hint != HintPrimary || replica.Hint != HintReplica || bad.HintErr == nil {
		t.Errorf("hints: %v %v %v %v", plain.Hint, hinted.Hint, replica.Hint, bad.HintErr)
	}
	if again := c.Classify("SELECT * FROM users WHERE id = 5"); again != plain || again.Hint != HintNone {
		t.Errorf("hinted variants polluted the plain entry")
	}
}

func TestClassifierParseErrorsNotShared(t *testing.T) {
	c := NewClassifier(100, nil)
	if bad := c.Classify("SELECT 'a"); bad.ParseError == nil {
		t.Fatal("want parse error for unterminated literal")
	}
	if good := c.Classify("SELECT 'a'"); good.ParseError != nil || good.Kind != Read {
		t.Errorf("valid variant got %v %v", good.Kind, good.ParseError)
	}
	// And the other order: a cached valid shape must not hide an error.
	if bad := c.Classify("SELECT 'b"); bad.ParseError == nil {
		t.Errorf("unterminated literal after a valid variant: no parse error")
	}
	// Syntax errors are cached by exact text.
	e1 := c.Classify("SELEC 1")
	e2 := c.Classify("SELEC 1")
	if e1 != e2 || e1.ParseError == nil || e1.Kind != Unknown {
		t.Errorf("syntax error caching: %p %p %v", e1, e2, e1.ParseError)
	}
}

func TestClassifierVolatilityRefresh(t *testing.T) {
	c := NewClassifier(100, nil)
	if !c.Classify("SELECT my_fn(1)").VolatileFunc {
		t.Fatal("unknown function must count as volatile")
	}
	c.SetVolatility(VolatilityLookup(map[string]Volatility{"my_fn": Stable}))
	if c.Classify("SELECT my_fn(2)").VolatileFunc {
		t.Error("after SetVolatility my_fn is stable, still volatile")
	}
	if !c.Classify("SELECT random()").VolatileFunc {
		t.Error("built-ins must still be known after loading a map")
	}
}

// A classification that was under way when the volatility changed must
// not be cached: the first statements of a database race its first
// pg_proc read, and a stale "volatile" stuck in the cache sent every later
// read of that shape to the primary.
func TestClassifierDropsAnswersOfTheOldVolatility(t *testing.T) {
	for _, sql := range []string{
		"SELECT my_fn(1)",                      // the shared cache
		"EXPLAIN (ANALYZE on) SELECT my_fn(1)", // the exact cache too
	} {
		t.Run(sql, func(t *testing.T) {
			entered, release := make(chan struct{}), make(chan struct{})
			var once sync.Once
			blocking := func(name string) Volatility {
				once.Do(func() { close(entered); <-release })
				return Volatile
			}
			c := NewClassifier(100, blocking)
			first := make(chan *Classification)
			go func() { first <- c.Classify(sql) }()
			select {
			case <-entered:
			case cl := <-first:
				t.Fatalf("classified without asking the volatility: %+v", cl)
			}
			c.SetVolatility(VolatilityLookup(map[string]Volatility{"my_fn": Stable}))
			close(release)
			<-first
			if got := c.Classify(sql); got.VolatileFunc {
				t.Errorf("after the reload my_fn is stable, but the cache kept the old answer")
			}
		})
	}
}

func TestClassifierBounded(t *testing.T) {
	c := NewClassifier(64, nil)
	for i := range 500 {
		c.Classify(fmt.Sprintf("SELECT c%d FROM t WHERE id = %d", i, i))
	}
	if n := c.Len(); n > 64+64 {
		t.Errorf("cache holds %d entries, want about 64", n)
	}
}

// inList is a query whose IN list has n parameters: every n is a shape of
// its own, as ORMs send them.
func inList(n int) string {
	var b strings.Builder
	b.WriteString("SELECT * FROM call_records WHERE id IN (")
	for i := range n {
		if i > 0 {
			b.WriteString(", ")
		}
		fmt.Fprintf(&b, "%d", 1000000+i)
	}
	b.WriteString(")")
	return b.String()
}

func TestClassifierBytesBounded(t *testing.T) {
	const budget = 1 << 20
	for _, tc := range []struct {
		name string
		sql  func(i int) string
	}{
		// Shared shapes: IN lists of every length up to a few thousand.
		{"shapes", func(i int) string { return inList(200 + 7*i) }},
		// Exact texts: parse errors are kept by their whole text.
		{"parse errors", func(i int) string { return inList(200+7*i) + " garbage(" }},
		// Settings are kept by their whole text too.
		{"settings", func(i int) string {
			return fmt.Sprintf("SET application_name = '%s'", strings.Repeat("x", 1000+37*i))
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := newClassifier(10000, budget, nil)
			for i := range 400 {
				sql := tc.sql(i)
				cl := c.Classify(sql)
				if i == 0 && c.Bytes() == 0 {
					t.Fatalf("nothing was cached for %.40q...", sql)
				}
				// Each fits the budget, so the newest is always kept.
				if again := c.Classify(sql); again != cl {
					t.Fatalf("statement %d was not kept (%d entries, %d bytes)", i, c.Len(), c.Bytes())
				}
			}
			if b := c.Bytes(); b > budget {
				t.Errorf("caches hold %d bytes of text, budget %d", b, budget)
			}
			c.Purge()
			if c.Len() != 0 || c.Bytes() != 0 {
				t.Errorf("after Purge: %d entries, %d bytes", c.Len(), c.Bytes())
			}
		})
	}
}

func TestTextCache(t *testing.T) {
	cost := func(k string, _ *Classification) int64 { return int64(len(k)) }
	cl := &Classification{}
	for _, tc := range []struct {
		name      string
		adds      []string
		wantKeys  []string
		wantBytes int64
	}{
		{"within budget", []string{"aaaa", "bbbb"}, []string{"aaaa", "bbbb"}, 8},
		{"oldest go first", []string{"aaaa", "bbbb", "cccc", "dddd"}, []string{"bbbb", "cccc", "dddd"}, 12},
		{"larger than the budget is not kept", []string{"aaaa", strings.Repeat("z", 13)}, []string{"aaaa"}, 4},
		{"replacing counts once", []string{"aaaa", "aaaa", "aaaa"}, []string{"aaaa"}, 4},
		{"entry limit", []string{"a", "b", "c", "d", "e"}, []string{"b", "c", "d", "e"}, 4},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := newTextCache(4, 12, cost)
			for _, k := range tc.adds {
				c.Add(k, cl)
			}
			if c.Len() != len(tc.wantKeys) {
				t.Errorf("%d entries, want %d", c.Len(), len(tc.wantKeys))
			}
			for _, k := range tc.wantKeys {
				if _, ok := c.Get(k); !ok {
					t.Errorf("%q is not cached", k)
				}
			}
			if c.Bytes() != tc.wantBytes {
				t.Errorf("%d bytes, want %d", c.Bytes(), tc.wantBytes)
			}
		})
	}
}

func TestClassifierConcurrent(t *testing.T) {
	c := NewClassifier(32, nil)
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range 300 {
				sql := fmt.Sprintf("SELECT v FROM t%d WHERE id = %d", i%40, g*1000+i)
				if cl := c.Classify(sql); cl.Kind != Read || len(cl.ReadTables) != 1 {
					t.Errorf("%q: %v %v", sql, cl.Kind, cl.ReadTables)
					return
				}
				if i%50 == 0 {
					c.Classify(fmt.Sprintf("SET x.y = %d", i))
				}
			}
		}()
	}
	wg.Wait()
}

func TestClassifyHotPathAllocs(t *testing.T) {
	c := NewClassifier(100, nil)
	const sql = "SELECT abalance FROM pgbench_accounts WHERE aid = 48213;"
	c.Classify(sql)
	if n := testing.AllocsPerRun(200, func() { c.Classify(sql) }); n != 0 {
		t.Errorf("cached Classify allocates %v times per call, want 0", n)
	}
}

func TestMayWrite(t *testing.T) {
	cases := map[string]bool{
		"SELECT 1":                   false,
		"SELECT * FROM t FOR UPDATE": false,
		"SELECT nextval('s')":        true,
		"INSERT INTO t VALUES (1)":   true,
		"CREATE TABLE x (id int)":    true,
		"BEGIN":                      false,
		"SET x.y = 1":                false,
		"VACUUM t":                   true,
		"SELEC 1":                    true,
	}
	for sql, want := range cases {
		if got := Analyze(sql, nil).MayWrite(); got != want {
			t.Errorf("MayWrite(%q) = %v, want %v", sql, got, want)
		}
	}
}

func TestFixedResult(t *testing.T) {
	for sql, want := range map[string]bool{
		"SELECT * FROM t WHERE id = $1":        true,
		"VALUES (1), (2)":                      true,
		"INSERT INTO t VALUES (1) RETURNING *": true,
		"UPDATE t SET a = 1":                   true,
		"DELETE FROM t RETURNING id":           true,
		"WITH x AS (SELECT 1) SELECT * FROM x": true,
		`FETCH ALL IN "c"`:                     false,
		"SHOW search_path":                     false,
		"EXPLAIN SELECT 1":                     false,
		"CALL p()":                             false,
		"SELECT 1; SELECT 2":                   false,
		"DECLARE c CURSOR FOR SELECT * FROM t": false,
		"CREATE TABLE t2 AS SELECT * FROM t":   false,
	} {
		if got := Analyze(sql, nil).FixedResult; got != want {
			t.Errorf("%q: FixedResult %v, want %v", sql, got, want)
		}
	}
}

// ClassifyBytes reads a buffer its caller reuses (a client's message): the
// caches must keep copies, never the buffer, whatever path a query takes.
func TestClassifyBytesKeepsNoPartOfTheBuffer(t *testing.T) {
	queries := []string{
		"SELECT abalance FROM pgbench_accounts WHERE aid = 48213;", // shared by shape
		"SET search_path = 'tenant_a'",                             // literal-sensitive: exact cache
		"SELEC oops FROM",                                          // parse error: exact cache
		"/* pgninja:nowhere */ SELECT 1",                           // unknown hint: its error quotes it
		"SELECT '" + strings.Repeat("x", 600) + "' AS long",        // too long for the stack buffer
	}
	c := NewClassifier(100, nil)
	want := NewClassifier(100, nil)
	for _, q := range queries {
		buf := []byte(q)
		got := c.ClassifyBytes(buf)
		for i := range buf {
			buf[i] = '#'
		}
		w := want.Classify(q)
		again := c.Classify(q) // from the caches ClassifyBytes filled, where it filled them
		for _, cl := range []*Classification{got, again} {
			if cl.Normalized != w.Normalized || cl.Kind != w.Kind || cl.Fingerprint != w.Fingerprint ||
				fmt.Sprint(cl.SetParams) != fmt.Sprint(w.SetParams) || fmt.Sprint(cl.HintErr) != fmt.Sprint(w.HintErr) ||
				fmt.Sprint(cl.ParseError) != fmt.Sprint(w.ParseError) {
				t.Errorf("%.40q after its buffer was overwritten:\n got %+v\nwant %+v", q, cl, w)
			}
		}
	}
	// A key that aliased a buffer would change under the cache's map,
	// and might come to match another client's statement.
	keys := c.exact.l.Keys()
	for _, sh := range c.shared {
		for _, k := range sh.l.Keys() {
			keys = append(keys, k.sql)
		}
	}
	for _, k := range keys {
		if strings.Contains(k, "#") {
			t.Errorf("a cache key is the overwritten buffer: %.40q", k)
		}
	}
}

// The common case, a query of a shape seen before, allocates nothing.
func TestClassifyBytesHitAllocatesNothing(t *testing.T) {
	c := NewClassifier(100, nil)
	c.Classify("SELECT abalance FROM pgbench_accounts WHERE aid = 1;")
	buf := []byte("SELECT abalance FROM pgbench_accounts WHERE aid = 48213;")
	if n := testing.AllocsPerRun(100, func() { c.ClassifyBytes(buf) }); n != 0 {
		t.Fatalf("ClassifyBytes of a known shape allocated %v times", n)
	}
}
