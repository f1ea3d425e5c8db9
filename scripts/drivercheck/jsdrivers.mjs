// Checks of Node.js drivers through pgninja: node-postgres (pg, with
// pg-cursor, pg-query-stream and pg-copy-streams) and postgres.js.
//
// Their test suites are not published to npm, so these checks drive what
// the libraries do on their own: node-postgres's named statements (one
// Parse per connection, the same name holding other text on each client),
// cursors that read a portal in parts with Execute+Flush and no Sync,
// startup parameters such as statement_timeout, binary results and error
// fields; postgres.js's pipelined named statements, its retry of a
// statement whose result type changed, cursors, COPY, LISTEN on a
// connection of its own, reserve() and cancel. Several clients run at
// once; answers are compared with what PostgreSQL gives. A failure prints
// "--- FAIL: Name" as go test does.
//
// usage: node jsdrivers.mjs DSN   (run where npm ci installed package.json)
import pg from 'pg'
import Cursor from 'pg-cursor'
import QueryStream from 'pg-query-stream'
import copyStreams from 'pg-copy-streams'
import postgres from 'postgres'
import { pipeline } from 'node:stream/promises'
import { Readable, Writable } from 'node:stream'

const url = new URL(process.argv[2])
const conn = {
  host: url.hostname,
  port: +url.port,
  user: decodeURIComponent(url.username),
  password: decodeURIComponent(url.password),
  database: url.pathname.slice(1),
}
const failed = []

class Failure extends Error {}

function want(cond, what) {
  if (!cond) throw new Failure(typeof what === 'string' ? what : JSON.stringify(what))
}

// wantCode runs fn, which must fail with SQLSTATE code.
async function wantCode(code, fn) {
  try {
    await fn()
  } catch (e) {
    want(e.code === code, `want SQLSTATE ${code}, got ${e.code}: ${e.message}`)
    return e
  }
  throw new Failure(`want SQLSTATE ${code}, got success`)
}

const sleep = ms => new Promise(r => setTimeout(r, ms))
const range = n => [...Array(n).keys()]

async function check(fn) {
  const t0 = Date.now()
  const took = () => ((Date.now() - t0) / 1000).toFixed(2)
  try {
    await fn()
    console.log(`--- PASS: ${fn.name} (${took()}s)`)
  } catch (e) {
    failed.push(fn.name)
    console.log(`--- FAIL: ${fn.name} (${took()}s)\n    ${e.constructor.name}: ${e.code ? e.code + ' ' : ''}${e.message}`)
    if (!(e instanceof Failure)) console.log(e.stack.split('\n').slice(1, 4).join('\n'))
  }
}

async function withClient(opts, fn) {
  const c = new pg.Client({ ...conn, ...opts })
  await c.connect()
  try {
    return await fn(c)
  } finally {
    await c.end()
  }
}

async function setup() {
  await withClient({}, async c => {
    await c.query(`set client_min_messages = warning`)
    await c.query(`drop table if exists jsd_rows, jsd_copy, jsd_shape`)
    await c.query(`create table jsd_rows (id int primary key, v text, n numeric)`)
    await c.query(`create table jsd_copy (id int, v text)`)
    await c.query(`create table jsd_shape (id int primary key, a int)`)
    await c.query(`insert into jsd_shape values (1, 10), (2, 20)`)
    for (const w of range(6)) {
      await c.query(`drop schema if exists jsd_s${w} cascade`)
      await c.query(`create schema jsd_s${w}`)
      await c.query(`create table jsd_s${w}.t (owner int, i int)`)
    }
  })
}

// node-postgres sends Parse for a named statement once per connection and
// only Bind after that. Every client here names its statement "stmt" but
// gives it other text, and the clients interleave.
async function TestNodePgNamedStatements() {
  await Promise.all(range(8).map(w => withClient({}, async c => {
    for (const i of range(150)) {
      const r = await c.query({ name: 'stmt', text: `select $1::int * ${w + 1} as x, $2::text as t`, values: [i, `c${w}`] })
      want(r.rows[0].x === i * (w + 1) && r.rows[0].t === `c${w}`, { w, i, rows: r.rows })
      if (i % 10 === 0) {
        await c.query('begin')
        const t = await c.query({ name: 'stmt', text: `select $1::int * ${w + 1} as x, $2::text as t`, values: [-i, 'tx'] })
        want(t.rows[0].x === -i * (w + 1), { w, i, tx: t.rows })
        await c.query('commit')
      }
    }
    // A named statement that fails when run stays prepared.
    for (const i of range(3)) {
      await wantCode('22012', () => c.query({ name: 'div', text: 'select 1 / $1::int as d', values: [0] }))
    }
    const d = await c.query({ name: 'div', text: 'select 1 / $1::int as d', values: [1] })
    want(d.rows[0].d === 1, d.rows)
  })))
}

async function TestNodePgPool() {
  const pool = new pg.Pool({ ...conn, max: 10 })
  try {
    await Promise.all(range(2000).map(async i => {
      switch (i % 4) {
        case 0: {
          const r = await pool.query({ name: `q${i % 13}`, text: `select $1::int + ${i % 13} as x`, values: [i] })
          return want(r.rows[0].x === i + (i % 13), r.rows)
        }
        case 1: {
          const r = await pool.query('select $1::text as t, $2::int8 as n', [`a${i}`, i])
          return want(r.rows[0].t === `a${i}` && r.rows[0].n === String(i), r.rows)
        }
        case 2: {
          const r = await pool.query(`select ${i} as s; select ${i + 1} as s2`)
          return want(r[0].rows[0].s === i && r[1].rows[0].s2 === i + 1, r.length)
        }
        default:
          // node-postgres answers a failed Execute of a named statement
          // slowly (tens of ms, PostgreSQL alone too), so only a few.
          if (i % 40 === 3) return wantCode('22012', () => pool.query({ name: `bad${i % 5}`, text: 'select 1 / $1::int as d', values: [0] }))
          return want((await pool.query({ name: `bad${i % 5}`, text: 'select 1 / $1::int as d', values: [1] })).rows[0].d === 1, 'bad')
      }
    }))
  } finally {
    await pool.end()
  }
}

// pg-cursor reads a portal in parts: Execute with a row limit and Flush,
// Sync only when the cursor closes, and outside a transaction too.
async function TestNodePgCursor() {
  const readAll = async (c, batch, pause) => {
    const cur = c.query(new Cursor('select g, md5(g::text) as h from generate_series(1, $1::int) g', [1000]))
    const got = []
    for (;;) {
      const rows = await cur.read(batch)
      if (rows.length === 0) break
      got.push(...rows.map(r => r.g))
      if (pause) await sleep(pause)
    }
    await cur.close()
    return got
  }
  await Promise.all(range(6).map(w => withClient({}, async c => {
    const got = await readAll(c, 100, 5)
    want(got.length === 1000 && got.every((g, i) => g === i + 1), `autocommit cursor: ${got.length} rows`)
    await c.query('begin')
    const inTx = await readAll(c, 333, 0)
    want(inTx.length === 1000, `cursor in a transaction: ${inTx.length} rows`)
    await c.query('commit')
    // Closed early: the rest of the portal is never read.
    const cur = c.query(new Cursor('select g from generate_series(1, 100000) g'))
    want((await cur.read(10)).length === 10, 'early close')
    await cur.close()
    const r = await c.query('select $1::int as w', [w])
    want(r.rows[0].w === w, 'after the cursor')
  })))
}

async function TestNodePgQueryStream() {
  await withClient({}, async c => {
    let n = 0
    let sum = 0
    const stream = c.query(new QueryStream('select g from generate_series(1, 20000) g', [], { batchSize: 250 }))
    await pipeline(stream, new Writable({
      objectMode: true,
      write(row, _, done) {
        n++
        sum += row.g
        done()
      },
    }))
    want(n === 20000 && sum === 20000 * 20001 / 2, { n, sum })
    const r = await c.query('select 1 as one')
    want(r.rows[0].one === 1, 'after the stream')
  })
}

async function TestNodePgCopy() {
  await withClient({}, async c => {
    await c.query('truncate jsd_copy')
    const rows = 50000
    async function* lines() {
      for (let i = 0; i < rows; i += 1000) {
        let chunk = ''
        for (let j = i; j < i + 1000; j++) chunk += `${j}\tv${j}\n`
        yield chunk
      }
    }
    await pipeline(Readable.from(lines()), c.query(copyStreams.from('copy jsd_copy from stdin')))
    const n = await c.query('select count(*)::int as n, sum(id)::int8 as s from jsd_copy')
    want(n.rows[0].n === rows && n.rows[0].s === String(rows * (rows - 1) / 2), n.rows)
    let bytes = 0
    let newlines = 0
    await pipeline(c.query(copyStreams.to('copy (select * from jsd_copy order by id) to stdout')), new Writable({
      write(chunk, _, done) {
        bytes += chunk.length
        for (const b of chunk) if (b === 10) newlines++
        done()
      },
    }))
    want(newlines === rows && bytes > rows * 4, { bytes, newlines })
    // A COPY the server refuses leaves the connection usable.
    await wantCode('42P01', () => pipeline(Readable.from(['1\tx\n']), c.query(copyStreams.from('copy jsd_missing from stdin'))))
    const r = await c.query('select 2 as two')
    want(r.rows[0].two === 2, 'after the failed COPY')
  })
}

async function TestNodePgErrorsAndResults() {
  await withClient({}, async c => {
    const syntax = await wantCode('42601', () => c.query('selec 1'))
    want(syntax.position === '1', `position ${syntax.position}`)
    const raised = await wantCode('P0001', () => c.query(`do $$ begin raise exception 'boom' using detail = 'the detail', hint = 'the hint'; end $$`))
    want(raised.detail === 'the detail' && raised.hint === 'the hint' && raised.message === 'boom', raised)
    // A multi-statement query stops at its error; what ran before it in
    // the same implicit transaction is rolled back.
    await c.query('truncate jsd_rows')
    await wantCode('22012', () => c.query(`insert into jsd_rows values (1, 'a', 1); select 1/0; insert into jsd_rows values (2, 'b', 2)`))
    const n = await c.query('select count(*)::int as n from jsd_rows')
    want(n.rows[0].n === 0, `rows after the failed multi-statement query: ${n.rows[0].n}`)
    await c.query('begin')
    await wantCode('23502', () => c.query('insert into jsd_rows (id) values (null)'))
    await wantCode('25P02', () => c.query('select 1'))
    await c.query('rollback')
    const empty = await c.query('')
    want(empty.rows.length === 0 && empty.command === null, empty)
    const arr = await c.query({ text: 'select 1 as a, $1::text as b', values: ['x'], rowMode: 'array' })
    want(JSON.stringify(arr.rows) === '[[1,"x"]]', arr.rows)
    const bin = await c.query({ text: 'select $1::int4 as a, $2::text as b, 42::int8 as c', values: [7, 'y'], binary: true })
    want(bin.rows[0].a === 7 && bin.rows[0].b === 'y' && bin.fields.every(f => f.format === 'binary'), bin.rows)
    const none = await c.query('create temp table if not exists jsd_t (i int)')
    want(none.command === 'CREATE' && none.rows.length === 0, none.command)
    const big = await c.query(`select repeat('x', 2 * 1024 * 1024) as s`)
    want(big.rows[0].s.length === 2 * 1024 * 1024, 'a 2 MB value')
  })
}

// node-postgres puts statement_timeout, lock_timeout,
// idle_in_transaction_session_timeout, application_name and options in
// its startup packet.
async function TestNodePgStartupParameters() {
  await Promise.all(range(4).map(w => withClient({
    statement_timeout: 400,
    lock_timeout: 300,
    application_name: `jsd${w}`,
    options: `-c search_path=jsd_s${w},public`,
  }, async c => {
    for (const i of range(5)) {
      const r = await c.query(`select current_setting('application_name') as app, current_setting('search_path') as sp,
        current_setting('statement_timeout') as st, current_setting('lock_timeout') as lt`)
      want(r.rows[0].app === `jsd${w}` && r.rows[0].sp === `jsd_s${w},public` && r.rows[0].st === '400ms' && r.rows[0].lt === '300ms', r.rows)
      await c.query('insert into t values ($1, $2)', [w, i])
    }
    const mine = await c.query('select count(*)::int as n, min(owner) as lo, max(owner) as hi from t')
    want(mine.rows[0].n === 5 && mine.rows[0].lo === w && mine.rows[0].hi === w, mine.rows)
    await wantCode('57014', () => c.query('select pg_sleep(3)'))
    const after = await c.query('select 5 as five')
    want(after.rows[0].five === 5, 'after the statement timeout')
  })))
}

async function TestNodePgListenAndNotices() {
  await withClient({}, async listener => {
    const notifications = []
    const notices = []
    listener.on('notification', m => notifications.push(m))
    listener.on('notice', m => notices.push(m.message))
    await listener.query('listen jsd_chan')
    await withClient({}, async sender => {
      for (const i of range(5)) await sender.query(`select pg_notify('jsd_chan', $1)`, [`m${i}`])
    })
    for (let i = 0; i < 100 && notifications.length < 5; i++) await sleep(20)
    want(notifications.map(m => m.payload).join() === 'm0,m1,m2,m3,m4', notifications.map(m => m.payload))
    await listener.query(`do $$ begin raise notice 'hello %', 1; end $$`)
    want(notices.includes('hello 1'), notices)
    await listener.query('unlisten *')
  })
}

// Clients with their own search_path interleave transactions; each sees
// only its own schema's rows.
async function TestNodePgSearchPathPerClient() {
  await Promise.all(range(6).map(w => withClient({}, async c => {
    await c.query(`set search_path = jsd_s${w}`)
    await c.query('delete from t')
    for (const i of range(40)) {
      await c.query('begin')
      await c.query('insert into t values ($1, $2)', [w, i])
      const r = await c.query('select count(*)::int as n, count(*) filter (where owner <> $1)::int as other from t', [w])
      want(r.rows[0].n === i + 1 && r.rows[0].other === 0, { w, i, rows: r.rows })
      await c.query(i % 5 === 4 ? 'rollback' : 'commit')
      if (i % 5 === 4) await c.query('insert into t values ($1, $2)', [w, i])
    }
    const sp = await c.query('show search_path')
    want(sp.rows[0].search_path === `jsd_s${w}`, sp.rows)
  })))
}

function sqlClient(opts = {}) {
  return postgres({ ...conn, onnotice: () => {}, ...opts })
}

// postgres.js names every statement it prepares and pipelines queries
// on each of its connections.
async function TestPostgresJsPipelinedStatements() {
  const sql = sqlClient({ max: 8 })
  try {
    await sql`truncate jsd_rows`
    await Promise.all(range(2000).map(async i => {
      switch (i % 6) {
        case 0: {
          const r = await sql`select ${i}::int as i, ${'x' + i}::text as t`
          return want(r[0].i === i && r[0].t === 'x' + i, r)
        }
        case 1: {
          const r = await sql`select generate_series(1, ${(i % 50) + 1}) as g`
          return want(r.length === (i % 50) + 1, r.length)
        }
        case 2:
          if (i % 3 === 0) return wantCode('22012', () => sql`select 1 / ${i % 3}::int as d`)
          return want((await sql`select 1 / ${i % 3}::int as d`)[0].d === Math.trunc(1 / (i % 3)), 'division')
        case 3: {
          const r = await sql`insert into jsd_rows values (${i}, ${'v' + i}, ${i / 2}) returning id`
          return want(r[0].id === i, r)
        }
        case 4: {
          const r = await sql`select ${[i, i + 1, i + 2]}::int[] as a, ${{ k: i }}::jsonb as j, ${String(2n ** 62n + BigInt(i))}::int8 as b`
          return want(r[0].a[2] === i + 2 && r[0].j.k === i && r[0].b === String(2n ** 62n + BigInt(i)), r)
        }
        default: {
          const r = await sql.unsafe(`select ${i} as u, $1::text as p`, [`p${i}`])
          return want(r[0].u === i && r[0].p === `p${i}`, r)
        }
      }
    }))
    const n = await sql`select count(*)::int as n from jsd_rows`
    want(n[0].n === range(2000).filter(i => i % 6 === 3).length, n)
  } finally {
    await sql.end()
  }
}

async function TestPostgresJsTransactions() {
  const sql = sqlClient({ max: 6 })
  try {
    await sql`delete from jsd_rows where id >= 100000`
    await Promise.all(range(40).map(t => sql.begin(async sql => {
      await sql`insert into jsd_rows values (${100000 + t}, 'tx', 0)`
      await wantCode('23505', () => sql.savepoint(sql => sql`insert into jsd_rows values (${100000 + t}, 'dup', 0)`))
      const r = await sql`select count(*)::int as c from jsd_rows where id = ${100000 + t}`
      want(r[0].c === 1, r)
      await sql`set local statement_timeout = '5s'`
      want((await sql`show statement_timeout`)[0].statement_timeout === '5s', 'SET LOCAL')
    })))
    want((await sql`show statement_timeout`)[0].statement_timeout === '0', 'SET LOCAL outlived its transaction')
    await sql.begin(async sql => {
      await sql`insert into jsd_rows values (999999, 'r', 0)`
      throw new Failure('roll back')
    }).catch(e => want(e instanceof Failure, e.message))
    want((await sql`select count(*)::int as c from jsd_rows where id = 999999`)[0].c === 0, 'rollback')
    want((await sql`select count(*)::int as c from jsd_rows where id >= 100000`)[0].c === 40, 'commits')
  } finally {
    await sql.end()
  }
}

async function TestPostgresJsCursorAndCopy() {
  const sql = sqlClient({ max: 4 })
  try {
    await Promise.all(range(4).map(async () => {
      let seen = 0
      let last = 0
      await sql`select generate_series(1, 1000) as g`.cursor(100, rows => {
        for (const r of rows) {
          want(r.g === last + 1, 'cursor order')
          last = r.g
        }
        seen += rows.length
      })
      want(seen === 1000, seen)
    }))
    await sql`truncate jsd_copy`
    const w = await sql`copy jsd_copy (id, v) from stdin`.writable()
    await pipeline(Readable.from(range(5000).map(i => `${i}\tc${i}\n`)), w)
    want((await sql`select count(*)::int as c from jsd_copy`)[0].c === 5000, 'COPY in')
    let lines = 0
    const rd = await sql`copy (select * from jsd_copy) to stdout`.readable()
    for await (const chunk of rd) for (const b of chunk) if (b === 10) lines++
    want(lines === 5000, `COPY out: ${lines} lines`)
    const multi = await sql`select 1 as a; select 2 as b`.simple()
    want(multi[0][0].a === 1 && multi[1][0].b === 2, multi)
    const desc = await sql`select ${1}::int as x, ${'t'}::text as y`.describe()
    want(desc.types.length === 2 && desc.columns.map(c => c.name).join() === 'x,y', desc)
  } finally {
    await sql.end()
  }
}

// A column added under a prepared "select *": PostgreSQL answers 0A000
// (cached plan must not change result type) and postgres.js prepares the
// statement again, going by the error's routine.
async function TestPostgresJsSchemaChange() {
  const sql = sqlClient({ max: 1 })
  try {
    await sql`alter table jsd_shape drop column if exists extra`
    for (const i of range(3)) want((await sql`select * from jsd_shape where id = ${1}`)[0].a === 10, `before ${i}`)
    await sql`alter table jsd_shape add column extra int default 7`
    const r = await sql`select * from jsd_shape where id = ${1}`
    want(r[0].extra === 7, r)
  } finally {
    await sql.end()
  }
}

async function TestPostgresJsListenReserveCancel() {
  const sql = sqlClient({ max: 4 })
  try {
    const got = []
    const listening = await sql.listen('jsd_pchan', p => got.push(p))
    for (const i of range(3)) await sql.notify('jsd_pchan', `n${i}`)
    for (let i = 0; i < 100 && got.length < 3; i++) await sleep(20)
    want(got.join() === 'n0,n1,n2', got)
    await listening.unlisten()

    const reserved = await sql.reserve()
    try {
      await reserved`create temp table jsd_temp (i int)`
      await reserved`insert into jsd_temp select generate_series(1, 10)`
      await Promise.all(range(20).map(i => sql`select ${i}::int as i`))
      want((await reserved`select count(*)::int as c from jsd_temp`)[0].c === 10, 'temp table on the reserved connection')
      await reserved`drop table jsd_temp`
    } finally {
      reserved.release()
    }

    const t0 = Date.now()
    const q = sql`select pg_sleep(5)`
    setTimeout(() => q.cancel(), 300)
    await wantCode('57014', () => q)
    want(Date.now() - t0 < 3000, `the cancel took ${Date.now() - t0} ms`)
    want((await sql`select 3 as three`)[0].three === 3, 'after the cancel')
  } finally {
    await sql.end()
  }
}

await setup()
for (const fn of [TestNodePgNamedStatements, TestNodePgPool, TestNodePgCursor, TestNodePgQueryStream, TestNodePgCopy,
  TestNodePgErrorsAndResults, TestNodePgStartupParameters, TestNodePgListenAndNotices, TestNodePgSearchPathPerClient,
  TestPostgresJsPipelinedStatements, TestPostgresJsTransactions, TestPostgresJsCursorAndCopy, TestPostgresJsSchemaChange,
  TestPostgresJsListenReserveCancel]) {
  await check(fn)
}
console.log(failed.length ? 'FAIL' : 'PASS')
process.exit(failed.length ? 1 : 0)
