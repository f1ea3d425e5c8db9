"""Checks of Python drivers through pgninja: psycopg 3, psycopg2, asyncpg.

Their own test suites are not packaged (Debian ships the libraries
only), so these checks drive what those libraries do on their own: psycopg
3's prepared statements (DEALLOCATE ALL after a ROLLBACK), pipelines,
server-side and held cursors, COPY; psycopg2's execute_values, large
objects and LISTEN; asyncpg's statement cache, Flush-ended prepares,
copy_records_to_table, savepoints, portals and type codecs. Each check
runs several clients at once and compares answers with what PostgreSQL
gives; a failure prints "--- FAIL: Name" as go test does.

usage: python3 pydrivers.py DSN
"""
import asyncio
import datetime
import decimal
import io
import json
import select
import sys
import threading
import time
import traceback

import asyncpg
import psycopg
import psycopg2
import psycopg2.extras

DSN = sys.argv[1]
failed = []


class Failure(Exception):
    pass


def want(cond, what):
    if not cond:
        raise Failure(what)


def check(fn):
    """Runs fn (a plain or async function), and reports it as go test does."""
    name = fn.__name__
    t0 = time.time()
    try:
        if asyncio.iscoroutinefunction(fn):
            asyncio.run(fn())
        else:
            fn()
        print(f"--- PASS: {name} ({time.time() - t0:.2f}s)", flush=True)
    except Exception as e:
        failed.append(name)
        print(f"--- FAIL: {name} ({time.time() - t0:.2f}s)\n    {type(e).__name__}: {e}", flush=True)
        if not isinstance(e, Failure):
            traceback.print_exc(limit=3)
    return fn


def threads(fn, n):
    """Runs fn(i) on n threads at once; the first error is raised."""
    errors = []

    def run(i):
        try:
            fn(i)
        except Exception as e:
            errors.append(e)

    ts = [threading.Thread(target=run, args=(i,)) for i in range(n)]
    for t in ts:
        t.start()
    for t in ts:
        t.join()
    if errors:
        raise errors[0]


def setup():
    with psycopg.connect(DSN, autocommit=True) as c:
        c.execute("""
          drop table if exists pyd_t, pyd_copy, pyd_alt;
          drop type if exists pyd_mood, pyd_pair;
          create type pyd_mood as enum ('sad', 'ok', 'happy');
          create type pyd_pair as (a int, b text);
          create table pyd_t (id serial primary key, k int unique, v text, j jsonb, n numeric,
                              ts timestamptz, arr int[], m pyd_mood, p pyd_pair);
          create table pyd_copy (k int, v text);
        """)


# psycopg 3

def TestPsycopgPreparedStatementsAcrossRollbacks():
    # After a ROLLBACK psycopg 3 drops its prepared statements with a
    # DEALLOCATE ALL sent through the extended protocol.
    def client(w):
        with psycopg.connect(DSN, prepare_threshold=2) as c:
            for i in range(20):
                k = 1000 + w * 100 + i
                for _ in range(3):
                    c.execute("select %s::int * 2", (k,)).fetchone()
                r = c.execute("select %s::int + 1", (k,)).fetchone()
                want(r == (k + 1,), f"got {r}")
                c.rollback() if i % 2 else c.commit()
    threads(client, 6)


def TestPsycopgPipelines():
    def client(w):
        with psycopg.connect(DSN, prepare_threshold=1) as c:
            for i in range(15):
                k = 2000 + w * 100 + i
                with c.transaction():
                    c.execute("insert into pyd_t (k, v) values (%s, %s)", (k, f"v{k}"))
                try:
                    with c.pipeline():
                        c.execute("update pyd_t set v = %s where k = %s", (f"p{k}", k))
                        c.execute("select 1/0")
                        c.execute("select 2")
                    raise Failure("no error from the pipeline")
                except psycopg.errors.DivisionByZero:
                    pass
                c.rollback()
                with c.pipeline():
                    c.execute("update pyd_t set v = %s where k = %s", (f"p{k}", k))
                    r = c.execute("select v from pyd_t where k = %s", (k,)).fetchone()
                want(r == (f"p{k}",), f"got {r}")
                c.commit()
            with c.pipeline(), c.cursor() as cur:
                cur.executemany("insert into pyd_t (k) values (%s) returning k", [(9000 + w * 100 + i,) for i in range(20)],
                                returning=True)
                got = []
                while True:
                    got.append(cur.fetchone()[0])
                    if not cur.nextset():
                        break
            want(got == [9000 + w * 100 + i for i in range(20)], f"executemany returned {got}")
            c.commit()
    threads(client, 4)


def TestPsycopgStatementCacheRotation():
    def client(w):
        with psycopg.connect(DSN, prepare_threshold=0) as c:
            c.prepared_max = 3
            for _ in range(4):
                for i in range(8):
                    r = c.execute(f"select %s::int + {i}", (w,)).fetchone()
                    want(r == (w + i,), f"got {r}")
                c.rollback()
            c.execute("deallocate all")
            r = c.execute("select %s::text || 'y'", ("z",), prepare=True).fetchone()
            want(r == ("zy",), f"got {r}")
    threads(client, 4)


def TestPsycopgCursors():
    def client(w):
        with psycopg.connect(DSN) as c:
            with c.cursor(name=f"named{w}") as cur:
                cur.itersize = 3
                cur.execute("select g from generate_series(1, 10) g")
                want([r[0] for r in cur] == list(range(1, 11)), "named cursor rows")
            c.commit()
            with c.cursor(name=f"held{w}", withhold=True) as cur:
                cur.execute("select g from generate_series(1, 10) g")
                c.commit()
                want([r[0] for r in cur.fetchmany(4)] == [1, 2, 3, 4], "held cursor, first rows")
                c.commit()
                want([r[0] for r in cur.fetchall()] == list(range(5, 11)), "held cursor, the rest")
            c.commit()
            c.read_only = True
            try:
                c.execute("create temp table pyd_nope (a int)")
                raise Failure("a temp table in a read-only transaction")
            except psycopg.errors.ReadOnlySqlTransaction:
                pass
            c.rollback()
            c.read_only = False
            c.isolation_level = psycopg.IsolationLevel.SERIALIZABLE
            r = c.execute("show transaction_isolation").fetchone()
            want(r == ("serializable",), f"got {r}")
            c.rollback()
            c.execute("insert into pyd_copy values (%s, 'after read-only')", (w,))
            c.commit()
    threads(client, 4)


def TestPsycopgCopy():
    def client(w):
        with psycopg.connect(DSN, autocommit=True) as c, c.cursor() as cur:
            with cur.copy("copy pyd_copy (k, v) from stdin (format binary)") as cp:
                cp.set_types(["int4", "text"])
                for i in range(100):
                    cp.write_row((10000 + w * 1000 + i, f"t{i}"))
            with cur.copy("copy (select k from pyd_copy where k between %s and %s order by k) to stdout",
                          (10000 + w * 1000, 10000 + w * 1000 + 99)) as cp:
                rows = list(cp.rows())
            want(len(rows) == 100, f"{len(rows)} rows copied out")
    threads(client, 4)


def TestPsycopgCancel():
    with psycopg.connect(DSN, autocommit=True) as c:
        threading.Timer(0.5, c.cancel).start()
        t0 = time.time()
        try:
            c.execute("select pg_sleep(5)")
            raise Failure("pg_sleep(5) was not cancelled")
        except psycopg.errors.QueryCanceled:
            want(time.time() - t0 < 3, f"cancelled after {time.time() - t0:.1f}s")
        want(c.execute("select 2").fetchone() == (2,), "the connection after a cancel")


# psycopg2

def TestPsycopg2Basics():
    def client(w):
        c = psycopg2.connect(DSN)
        cur = c.cursor()
        for i in range(10):
            k = 20000 + w * 1000 + i * 10
            psycopg2.extras.execute_values(cur, "insert into pyd_copy (k, v) values %s", [(k + j, "e") for j in range(5)])
            c.commit()
            cur.execute("select count(*) from pyd_copy where k between %s and %s", (k, k + 4))
            want(cur.fetchone()[0] == 5, "execute_values rows")
            c.commit()
            try:
                cur.execute("select * from pyd_nope")
                raise Failure("no error for a missing table")
            except psycopg2.errors.UndefinedTable as e:
                want(e.diag.statement_position == "15", f"position {e.diag.statement_position}")
            c.rollback()
        lo = c.lobject(0, "wb")
        lo.write(b"large object %d" % w)
        oid = lo.oid
        lo.close()
        c.commit()
        lo = c.lobject(oid, "rb")
        want(lo.read() == b"large object %d" % w, "large object read back")
        lo.unlink()
        c.commit()
        c.close()
    threads(client, 4)


def TestPsycopg2Listen():
    c = psycopg2.connect(DSN)
    c.autocommit = True
    c.cursor().execute("listen pyd_chan")
    c2 = psycopg2.connect(DSN)
    c2.autocommit = True
    c2.cursor().execute("notify pyd_chan, 'hi'")
    got, deadline = None, time.time() + 5
    while got is None and time.time() < deadline:
        if select.select([c], [], [], 0.5) != ([], [], []):
            c.poll()
            if c.notifies:
                got = c.notifies.pop().payload
    want(got == "hi", f"notification {got!r}")
    c.close()
    c2.close()


# asyncpg

async def TestAsyncpgPool():
    pool = await asyncpg.create_pool(DSN, min_size=4, max_size=10)

    async def client(w):
        for i in range(20):
            async with pool.acquire() as c:
                k = 30000 + w * 1000 + i
                r = await c.fetchrow(
                    "insert into pyd_t (k, v, j, n, ts, arr, m, p) values ($1, $2, $3, $4, $5, $6, $7, $8) "
                    "returning k, v, arr, m, p", k, f"v{k}", json.dumps({"k": k}), decimal.Decimal("1.25") * k,
                    datetime.datetime(2024, 1, 1, tzinfo=datetime.timezone.utc), [k, k + 1], "happy", (k, "x"))
                want(r["k"] == k and r["arr"] == [k, k + 1] and r["m"] == "happy" and tuple(r["p"]) == (k, "x"), repr(r))
                want(await c.fetchval("select v from pyd_t where k = $1", k) == f"v{k}", "read of its own write")
                async with c.transaction():
                    await c.execute("update pyd_t set v = $1 where k = $2", f"u{k}", k)
                    try:
                        async with c.transaction():
                            await c.execute("insert into pyd_t (k) values ($1)", k)
                        raise Failure("no unique violation")
                    except asyncpg.UniqueViolationError as e:
                        want(e.constraint_name == "pyd_t_k_key", e.constraint_name)
                    n = 0
                    async for _ in c.cursor("select g from generate_series(1, 50) g", prefetch=7):
                        n += 1
                    want(n == 50, f"{n} rows from a portal")
                want(await c.fetchval("select v from pyd_t where k = $1", k) == f"u{k}", "the committed update")
                if i % 5 == 0:
                    await c.fetchval("select count(*) from pyd_copy")
                    res = await c.copy_records_to_table("pyd_copy", records=[(k, "c")], columns=["k", "v"])
                    want(res == "COPY 1", res)
    await asyncio.gather(*[client(w) for w in range(8)])
    await pool.close()


async def TestAsyncpgSchemaChange():
    c = await asyncpg.connect(DSN)
    await c.execute("drop table if exists pyd_alt; create table pyd_alt (a int); insert into pyd_alt values (1)")
    await c.fetch("select * from pyd_alt")
    await c.execute("alter table pyd_alt add column b int default 7")
    r = await c.fetch("select * from pyd_alt")
    want(len(r) == 1 and r[0]["b"] == 7, repr(r))
    await c.close()


async def TestAsyncpgSessions():
    async def client(w):
        c = await asyncpg.connect(DSN, server_settings={"application_name": f"pyd{w}", "timezone": "Asia/Tokyo"})
        await c.set_type_codec("json", encoder=json.dumps, decoder=json.loads, schema="pg_catalog")
        for i in range(10):
            want(await c.fetchval("select current_setting('TimeZone')") == "Asia/Tokyo", "time zone")
            want(await c.fetchval("select current_setting('application_name')") == f"pyd{w}", "application_name")
            want(await c.fetchval("select $1::json", {"i": i}) == {"i": i}, "json codec")
        rows = await c.fetch("select g, md5(g::text) from generate_series(1, 100000) g")
        want(len(rows) == 100000, f"{len(rows)} rows")
        buf = io.BytesIO()
        res = await c.copy_from_query("select g from generate_series(1, 1000) g", output=buf)
        want(res == "COPY 1000", res)
        try:
            await c.fetch("select pg_sleep(5)", timeout=0.5)
            raise Failure("no timeout")
        except asyncio.TimeoutError:
            pass
        want(await c.fetchval("select 7") == 7, "the connection after a timeout")
        await c.close()
    await asyncio.gather(*[client(w) for w in range(4)])


async def TestAsyncpgListen():
    c = await asyncpg.connect(DSN)
    got = asyncio.get_running_loop().create_future()
    await c.add_listener("pyd_achan", lambda *a: got.done() or got.set_result(a[3]))
    c2 = await asyncpg.connect(DSN)
    await c2.execute("notify pyd_achan, 'hello'")
    want(await asyncio.wait_for(got, 5) == "hello", "notification")
    await c.close()
    await c2.close()


setup()
for fn in [TestPsycopgPreparedStatementsAcrossRollbacks, TestPsycopgPipelines, TestPsycopgStatementCacheRotation,
           TestPsycopgCursors, TestPsycopgCopy, TestPsycopgCancel, TestPsycopg2Basics, TestPsycopg2Listen,
           TestAsyncpgPool, TestAsyncpgSchemaChange, TestAsyncpgSessions, TestAsyncpgListen]:
    check(fn)
print("FAIL" if failed else "PASS")
