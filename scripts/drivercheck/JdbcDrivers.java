// Checks of the PostgreSQL JDBC driver (pgjdbc, Debian's package) through
// pgninja. pgjdbc's own suite needs its Gradle build and a server set up its
// way, so these checks drive what the driver does on its own that a pooler
// can break: server-side statements named S_1, S_2... on every connection
// once a statement has run prepareThreshold times; batches; fetch sizes,
// which read a named portal in parts across Syncs; autosave savepoints and
// the retry after a schema change; Parse/Describe-only metadata calls;
// COPY and large objects (fastpath function calls); query timeouts, which
// cancel; LISTEN; read-only connections. Several connections run at once;
// a failure prints "--- FAIL: Name" as go test does.
//
// usage: java -cp postgresql.jar JdbcDrivers.java DSN
//   (DSN: postgresql://user:password@host:port/database)

import java.io.ByteArrayInputStream;
import java.io.ByteArrayOutputStream;
import java.math.BigDecimal;
import java.net.URI;
import java.nio.charset.StandardCharsets;
import java.sql.*;
import java.util.*;
import java.util.concurrent.*;

import org.postgresql.PGConnection;
import org.postgresql.PGNotification;
import org.postgresql.copy.CopyManager;
import org.postgresql.largeobject.LargeObject;
import org.postgresql.largeobject.LargeObjectManager;

public class JdbcDrivers {
    static String url;
    static final List<String> failed = new ArrayList<>();

    interface Check {
        void run() throws Exception;
    }

    interface PerConn {
        void run(Connection c, int i) throws Exception;
    }

    static class Failure extends RuntimeException {
        Failure(String m) {
            super(m);
        }
    }

    static void want(boolean ok, String what) {
        if (!ok) throw new Failure(what);
    }

    static void wantState(String state, Check c) throws Exception {
        try {
            c.run();
        } catch (SQLException e) {
            want(state.equals(e.getSQLState()), "want SQLSTATE " + state + ", got " + e.getSQLState() + ": " + e.getMessage());
            return;
        }
        throw new Failure("want SQLSTATE " + state + ", got success");
    }

    static Connection connect(String extra) throws SQLException {
        return DriverManager.getConnection(url + extra);
    }

    // parallel runs fn on n connections (made with extra) at once.
    static void parallel(int n, String extra, PerConn fn) throws Exception {
        ExecutorService pool = Executors.newFixedThreadPool(n);
        try {
            List<Future<?>> fs = new ArrayList<>();
            for (int i = 0; i < n; i++) {
                final int w = i;
                fs.add(pool.submit(() -> {
                    try (Connection c = connect(extra)) {
                        fn.run(c, w);
                    }
                    return null;
                }));
            }
            for (Future<?> f : fs) {
                try {
                    f.get(300, TimeUnit.SECONDS);
                } catch (ExecutionException e) {
                    if (e.getCause() instanceof Exception) throw (Exception) e.getCause();
                    throw e;
                }
            }
        } finally {
            pool.shutdownNow();
        }
    }

    static void exec(Connection c, String sql) throws SQLException {
        try (Statement s = c.createStatement()) {
            s.execute(sql);
        }
    }

    static long one(Connection c, String sql) throws SQLException {
        try (Statement s = c.createStatement(); ResultSet r = s.executeQuery(sql)) {
            want(r.next(), "no row: " + sql);
            return r.getLong(1);
        }
    }

    static void check(String name, Check c) {
        long t0 = System.nanoTime();
        String took = "";
        try {
            c.run();
            took = String.format("%.2f", (System.nanoTime() - t0) / 1e9);
            System.out.println("--- PASS: " + name + " (" + took + "s)");
        } catch (Throwable e) {
            took = String.format("%.2f", (System.nanoTime() - t0) / 1e9);
            failed.add(name);
            System.out.println("--- FAIL: " + name + " (" + took + "s)\n    " + e);
            if (!(e instanceof Failure)) {
                StackTraceElement[] st = e.getStackTrace();
                for (int i = 0; i < Math.min(3, st.length); i++) System.out.println("        at " + st[i]);
            }
        }
        System.out.flush();
    }

    static void setup() throws SQLException {
        try (Connection c = connect("")) {
            exec(c, "set client_min_messages = warning");
            exec(c, "drop table if exists jdbc_rows, jdbc_copy, jdbc_shape");
            exec(c, "create table jdbc_rows (id int primary key, v text, n numeric, at timestamptz)");
            exec(c, "create table jdbc_copy (id int, v text)");
            exec(c, "create table jdbc_shape (id int primary key, a int)");
            exec(c, "insert into jdbc_shape values (1, 10), (2, 20)");
        }
    }

    // Every connection prepares its statements on the server as S_1, S_2...
    // after prepareThreshold runs (5 by default; -1: from the first run, with
    // binary results), each connection with its own text under the same
    // names.
    static void serverPreparedStatements() throws Exception {
        for (String extra : new String[] {"", "&prepareThreshold=-1", "&prepareThreshold=1&preparedStatementCacheQueries=2"}) {
            parallel(8, extra, (c, w) -> {
                String[] texts = {
                    "select ?::int * " + (w + 1) + " as x",
                    "select ?::int + " + (w + 1) + " as x",
                    "select ?::int - " + (w + 1) + " as x",
                };
                for (int i = 0; i < 60; i++) {
                    String sql = texts[i % texts.length];
                    try (PreparedStatement ps = c.prepareStatement(sql)) {
                        ps.setInt(1, i);
                        try (ResultSet r = ps.executeQuery()) {
                            want(r.next(), "a row");
                            long want = switch (i % texts.length) {
                                case 0 -> (long) i * (w + 1);
                                case 1 -> i + (w + 1);
                                default -> i - (w + 1);
                            };
                            want(r.getLong(1) == want, extra + " conn " + w + " run " + i + ": got " + r.getLong(1) + " want " + want);
                        }
                    }
                }
                // The same PreparedStatement object, run past the threshold.
                try (PreparedStatement ps = c.prepareStatement("select ?::text || '-' || " + w)) {
                    for (int i = 0; i < 12; i++) {
                        ps.setString(1, "r" + i);
                        try (ResultSet r = ps.executeQuery()) {
                            want(r.next() && r.getString(1).equals("r" + i + "-" + w), "reused statement, run " + i);
                        }
                    }
                }
            });
        }
    }

    static void batches() throws Exception {
        try (Connection c = connect("")) {
            exec(c, "truncate jdbc_rows");
        }
        parallel(4, "&reWriteBatchedInserts=false", (c, w) -> {
            try (PreparedStatement ps = c.prepareStatement("insert into jdbc_rows (id, v, n) values (?, ?, ?)")) {
                for (int i = 0; i < 500; i++) {
                    ps.setInt(1, w * 10000 + i);
                    ps.setString(2, "b" + i);
                    ps.setBigDecimal(3, new BigDecimal(i).movePointLeft(2));
                    ps.addBatch();
                }
                int[] n = ps.executeBatch();
                want(n.length == 500, "batch counts: " + n.length);
            }
        });
        parallel(4, "&reWriteBatchedInserts=true", (c, w) -> {
            c.setAutoCommit(false);
            try (PreparedStatement ps = c.prepareStatement("insert into jdbc_rows (id, v) values (?, ?)")) {
                for (int i = 0; i < 500; i++) {
                    ps.setInt(1, 100000 + w * 10000 + i);
                    ps.setString(2, "rw" + i);
                    ps.addBatch();
                }
                ps.executeBatch();
            }
            c.commit();
        });
        try (Connection c = connect("")) {
            want(one(c, "select count(*) from jdbc_rows") == 4000, "rows after the batches");
            want(one(c, "select count(*) from jdbc_rows where n = 4.99") == 4, "numeric values");
        }
        // A batch with a failing row: nothing of it stays in its transaction.
        try (Connection c = connect("")) {
            c.setAutoCommit(false);
            try (PreparedStatement ps = c.prepareStatement("insert into jdbc_rows (id, v) values (?, ?)")) {
                for (int i = 0; i < 10; i++) {
                    ps.setInt(1, i == 5 ? 0 : 900000 + i);
                    ps.setString(2, "dup");
                    ps.addBatch();
                }
                try {
                    ps.executeBatch();
                    throw new Failure("a duplicate key in a batch succeeded");
                } catch (BatchUpdateException e) {
                    want("23505".equals(e.getSQLState()), "batch error " + e.getSQLState());
                }
            }
            c.rollback();
            want(one(c, "select count(*) from jdbc_rows where v = 'dup'") == 0, "rolled back batch");
        }
    }

    // With autocommit off and a fetch size, pgjdbc reads a named portal in
    // parts: Execute with a row limit and Sync, then Execute again.
    static void fetchSize() throws Exception {
        parallel(6, "", (c, w) -> {
            c.setAutoCommit(false);
            for (int round = 0; round < 3; round++) {
                try (PreparedStatement ps = c.prepareStatement("select g, md5(g::text) from generate_series(1, ?) g")) {
                    ps.setFetchSize(50);
                    ps.setInt(1, 1000 + w);
                    int n = 0;
                    try (ResultSet r = ps.executeQuery()) {
                        while (r.next()) {
                            n++;
                            want(r.getInt(1) == n, "row order");
                            if (n % 200 == 0) {
                                // Another statement between two fetches.
                                want(one(c, "select " + n) == n, "a query between fetches");
                            }
                        }
                    }
                    want(n == 1000 + w, "rows: " + n);
                }
                c.commit();
            }
        });
    }

    // autosave=always wraps statements in savepoints, so a transaction goes
    // on after an error; conservative retries a statement whose result type
    // a schema change made the server's cached plan reject.
    static void autosave() throws Exception {
        try (Connection c = connect("&autosave=always")) {
            c.setAutoCommit(false);
            exec(c, "insert into jdbc_rows (id, v) values (500000, 'as')");
            try {
                exec(c, "insert into jdbc_rows (id, v) values (500000, 'dup')");
                throw new Failure("duplicate accepted");
            } catch (SQLException e) {
                want("23505".equals(e.getSQLState()), "dup state " + e.getSQLState());
            }
            want(one(c, "select count(*) from jdbc_rows where id = 500000") == 1, "the transaction went on");
            c.rollback();
        }
        try (Connection c = connect("&autosave=conservative&prepareThreshold=1")) {
            exec(c, "alter table jdbc_shape drop column if exists extra");
            c.setAutoCommit(false);
            try (PreparedStatement ps = c.prepareStatement("select * from jdbc_shape where id = ?")) {
                for (int i = 0; i < 3; i++) {
                    ps.setInt(1, 1);
                    try (ResultSet r = ps.executeQuery()) {
                        want(r.next() && r.getInt("a") == 10, "before the change");
                    }
                }
                c.commit();
                try (Connection other = connect("")) {
                    exec(other, "alter table jdbc_shape add column extra int default 7");
                }
                // Through a transaction pool, a client holding the server
                // connection just used sends the statement to another one,
                // where it is prepared anew after the change.
                try (Connection holder = connect("")) {
                    holder.setAutoCommit(false);
                    want(one(holder, "select 1") == 1, "the holder");
                    ps.setInt(1, 1);
                    try (ResultSet r = ps.executeQuery()) {
                        want(r.next() && r.getInt("extra") == 7, "the new column");
                    }
                    c.commit();
                    holder.rollback();
                }
            }
        }
    }

    // getParameterMetaData and getMetaData before execution send Parse and
    // Describe with a Sync, and run nothing.
    static void metadata() throws Exception {
        parallel(4, "", (c, w) -> {
            try (PreparedStatement ps = c.prepareStatement("select id, v from jdbc_rows where id = ? and v = ?")) {
                ParameterMetaData pm = ps.getParameterMetaData();
                want(pm.getParameterCount() == 2 && pm.getParameterType(1) == Types.INTEGER, "parameter metadata");
                ResultSetMetaData rm = ps.getMetaData();
                want(rm.getColumnCount() == 2 && rm.getColumnName(2).equals("v"), "result metadata");
            }
            DatabaseMetaData dm = c.getMetaData();
            try (ResultSet r = dm.getColumns(null, "public", "jdbc_shape", null)) {
                int n = 0;
                while (r.next()) n++;
                want(n >= 2, "columns of jdbc_shape: " + n);
            }
        });
    }

    static void copyAndLargeObjects() throws Exception {
        try (Connection c = connect("")) {
            exec(c, "truncate jdbc_copy");
            CopyManager cm = c.unwrap(PGConnection.class).getCopyAPI();
            StringBuilder sb = new StringBuilder();
            for (int i = 0; i < 20000; i++) sb.append(i).append('\t').append("c").append(i).append('\n');
            long in = cm.copyIn("copy jdbc_copy from stdin", new ByteArrayInputStream(sb.toString().getBytes(StandardCharsets.UTF_8)));
            want(in == 20000, "copy in: " + in);
            ByteArrayOutputStream out = new ByteArrayOutputStream();
            long n = cm.copyOut("copy (select * from jdbc_copy order by id) to stdout", out);
            want(n == 20000 && out.toString(StandardCharsets.UTF_8).equals(sb.toString()), "copy out: " + n);
            try {
                cm.copyIn("copy jdbc_missing from stdin", new ByteArrayInputStream(new byte[] {'1', '\n'}));
                throw new Failure("COPY into a missing table succeeded");
            } catch (SQLException e) {
                want("42P01".equals(e.getSQLState()), "copy error " + e.getSQLState());
            }
            want(one(c, "select 3") == 3, "after the failed COPY");

            c.setAutoCommit(false);
            LargeObjectManager lom = c.unwrap(PGConnection.class).getLargeObjectAPI();
            long oid = lom.createLO(LargeObjectManager.READWRITE);
            byte[] data = new byte[300_000];
            new Random(7).nextBytes(data);
            LargeObject lo = lom.open(oid, LargeObjectManager.WRITE);
            lo.write(data);
            lo.close();
            c.commit();
            lo = lom.open(oid, LargeObjectManager.READ);
            byte[] back = lo.read(data.length + 10);
            lo.close();
            want(Arrays.equals(data, back), "large object read back: " + back.length + " bytes");
            lom.delete(oid);
            c.commit();
        }
    }

    static void queryTimeoutAndNotifications() throws Exception {
        try (Connection c = connect("")) {
            try (Statement s = c.createStatement()) {
                s.setQueryTimeout(1);
                long t0 = System.nanoTime();
                wantState("57014", () -> s.execute("select pg_sleep(10)"));
                long ms = (System.nanoTime() - t0) / 1_000_000;
                want(ms < 4000, "the timeout took " + ms + " ms");
            }
            want(one(c, "select 4") == 4, "after the timeout");

            exec(c, "listen jdbc_chan");
            try (Connection other = connect("")) {
                for (int i = 0; i < 3; i++) exec(other, "notify jdbc_chan, 'm" + i + "'");
            }
            List<String> got = new ArrayList<>();
            long until = System.currentTimeMillis() + 5000;
            while (got.size() < 3 && System.currentTimeMillis() < until) {
                PGNotification[] ns = c.unwrap(PGConnection.class).getNotifications(500);
                if (ns != null) for (PGNotification n : ns) got.add(n.getParameter());
            }
            want(got.equals(List.of("m0", "m1", "m2")), "notifications " + got);
            exec(c, "unlisten *");
        }
    }

    // preferQueryMode=simple sends every statement as a simple query, with
    // parameters inlined; several statements give several results.
    static void simpleQueryMode() throws Exception {
        parallel(3, "&preferQueryMode=simple", (c, w) -> {
            try (Statement s = c.createStatement()) {
                want(s.execute("select " + w + "; select 'two'"), "a result");
                try (ResultSet r = s.getResultSet()) {
                    want(r.next() && r.getInt(1) == w, "first result");
                }
                want(s.getMoreResults(), "a second result");
                try (ResultSet r = s.getResultSet()) {
                    want(r.next() && r.getString(1).equals("two"), "second result");
                }
            }
            try (PreparedStatement ps = c.prepareStatement("select ?::text || ?::int")) {
                ps.setString(1, "it's ");
                ps.setInt(2, w);
                try (ResultSet r = ps.executeQuery()) {
                    want(r.next() && r.getString(1).equals("it's " + w), "inlined parameters");
                }
            }
        });
    }

    static void readOnlyAndTypes() throws Exception {
        try (Connection c = connect("")) {
            c.setReadOnly(true);
            c.setAutoCommit(false);
            want(one(c, "select count(*) from jdbc_shape") == 2, "a read-only transaction");
            wantState("25006", () -> exec(c, "insert into jdbc_shape (id, a) values (3, 30)"));
            c.rollback();
            c.setReadOnly(false);
            c.setAutoCommit(true);

            try (PreparedStatement ps = c.prepareStatement(
                    "select ?::bytea, ?::numeric, ?::timestamptz, ?::int[], ?::jsonb->>'k', ?::uuid")) {
                byte[] bytes = {0, 1, 2, (byte) 255};
                Timestamp at = Timestamp.valueOf("2026-11-26 10:11:12.345678");
                UUID id = UUID.fromString("123e4567-e89b-12d3-a456-426614174000");
                for (int i = 0; i < 7; i++) { // past prepareThreshold: binary results
                    ps.setBytes(1, bytes);
                    ps.setBigDecimal(2, new BigDecimal("12345678901234567890.123456789"));
                    ps.setTimestamp(3, at);
                    ps.setArray(4, c.createArrayOf("int4", new Integer[] {1, 2, i}));
                    ps.setString(5, "{\"k\": \"v" + i + "\"}");
                    ps.setObject(6, id);
                    try (ResultSet r = ps.executeQuery()) {
                        want(r.next(), "a row");
                        want(Arrays.equals(r.getBytes(1), bytes), "bytea");
                        want(r.getBigDecimal(2).equals(new BigDecimal("12345678901234567890.123456789")), "numeric");
                        want(r.getTimestamp(3).equals(at), "timestamptz " + r.getTimestamp(3));
                        want(Arrays.equals((Integer[]) r.getArray(4).getArray(), new Integer[] {1, 2, i}), "int[]");
                        want(r.getString(5).equals("v" + i), "jsonb");
                        want(r.getObject(6).equals(id), "uuid");
                    }
                }
            }
        }
    }

    public static void main(String[] args) throws Exception {
        URI u = new URI(args[0]);
        String[] cred = u.getUserInfo().split(":", 2);
        url = "jdbc:postgresql://" + u.getHost() + ":" + u.getPort() + u.getPath()
                + "?sslmode=disable&user=" + cred[0] + "&password=" + cred[1];
        System.out.println("pgjdbc " + org.postgresql.util.DriverInfo.DRIVER_VERSION);
        setup();
        check("TestJdbcServerPreparedStatements", JdbcDrivers::serverPreparedStatements);
        check("TestJdbcBatches", JdbcDrivers::batches);
        check("TestJdbcFetchSize", JdbcDrivers::fetchSize);
        check("TestJdbcAutosave", JdbcDrivers::autosave);
        check("TestJdbcMetadata", JdbcDrivers::metadata);
        check("TestJdbcCopyAndLargeObjects", JdbcDrivers::copyAndLargeObjects);
        check("TestJdbcQueryTimeoutAndNotifications", JdbcDrivers::queryTimeoutAndNotifications);
        check("TestJdbcSimpleQueryMode", JdbcDrivers::simpleQueryMode);
        check("TestJdbcReadOnlyAndTypes", JdbcDrivers::readOnlyAndTypes);
        System.out.println(failed.isEmpty() ? "PASS" : "FAIL");
        System.exit(failed.isEmpty() ? 0 : 1);
    }
}
