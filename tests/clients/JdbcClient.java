// pgjdbc (Debian's libpostgresql-jdbc-java) against fusegate, or against
// PostgreSQL to check the expectations. Run as a single-file program:
//
//   java -cp /usr/share/java/postgresql.jar tests/clients/JdbcClient.java \
//        --host H --port P --dbname D --user U
//
// Exercises what DBeaver and Metabase do through JDBC: DatabaseMetaData
// (getTables, getColumns, getSchemas), ResultSetMetaData, PreparedStatement
// past pgjdbc's prepareThreshold (server-side statements, binary transfer),
// batches, transactions and SQLSTATEs. Exits non-zero on the first failed
// check, naming it.

import java.math.BigDecimal;
import java.sql.*;
import java.util.*;

public class JdbcClient {
    // (column, SQL type, pg_type name, java.sql.Types) — the same types as
    // tests/clients/common.py.
    static final String[][] COLUMNS = {
        {"c_small", "SMALLINT", "int2"},
        {"c_int", "INT", "int4"},
        {"c_big", "BIGINT", "int8"},
        {"c_real", "REAL", "float4"},
        {"c_double", "DOUBLE PRECISION", "float8"},
        {"c_num", "NUMERIC(12,3)", "numeric"},
        {"c_varchar", "VARCHAR(20)", "varchar"},
        {"c_text", "TEXT", "text"},
        {"c_bool", "BOOLEAN", "bool"},
        {"c_date", "DATE", "date"},
        {"c_ts", "TIMESTAMP", "timestamp"},
    };
    static final int[] JDBC_TYPES = {
        Types.SMALLINT, Types.INTEGER, Types.BIGINT, Types.REAL, Types.DOUBLE, Types.NUMERIC,
        Types.VARCHAR, Types.VARCHAR, Types.BIT, Types.DATE, Types.TIMESTAMP,
    };

    static final Object[][] ROWS = {
        {(short) 1, 42, 9_000_000_000L, 1.5f, 2.25, new BigDecimal("12345.678"), "héllo",
         "it's \"text\"\nline 2", true, java.sql.Date.valueOf("2024-02-29"),
         Timestamp.valueOf("2024-05-01 09:30:00.123456")},
        {(short) -32768, Integer.MIN_VALUE, Long.MIN_VALUE, -0.25f, -1e300, new BigDecimal("-0.005"),
         "", "", false, java.sql.Date.valueOf("1969-07-20"), Timestamp.valueOf("1969-07-20 20:17:40")},
        {(short) 32767, Integer.MAX_VALUE, Long.MAX_VALUE, 3.0e10f, 1e-300,
         new BigDecimal("999999999.999"), "x".repeat(20), "ünïcødé ✓", true,
         java.sql.Date.valueOf("9999-12-31"), Timestamp.valueOf("2000-01-01 00:00:00")},
        {null, null, null, null, null, null, null, null, null, null, null},
    };

    static void check(boolean cond, String msg) {
        if (!cond) throw new AssertionError(msg);
    }

    static void eq(Object got, Object want, String what) {
        check(Objects.equals(got, want), what + ": got " + got + ", want " + want);
    }

    public static void main(String[] argv) throws Exception {
        Map<String, String> args = new HashMap<>(Map.of(
            "host", "127.0.0.1", "port", "5433", "dbname", "default", "user", "tester"));
        for (int i = 0; i + 1 < argv.length; i += 2) args.put(argv[i].replaceFirst("^--", ""), argv[i + 1]);
        String url = "jdbc:postgresql://" + args.get("host") + ":" + args.get("port") + "/" + args.get("dbname");
        Properties props = new Properties();
        props.setProperty("user", args.get("user"));
        props.setProperty("password", System.getenv().getOrDefault("PGPASSWORD", ""));
        String suffix = UUID.randomUUID().toString().replace("-", "").substring(0, 10);
        String t = "jdbc_types_" + suffix;
        String tx = "jdbc_tx_" + suffix;

        String[] steps = {"connect and create table", "batch insert through a PreparedStatement",
            "select every type", "ResultSetMetaData", "DatabaseMetaData.getTables/getColumns/getSchemas",
            "PreparedStatement past prepareThreshold", "transactions", "errors keep the connection"};
        int step = 0;
        try (Connection conn = DriverManager.getConnection(url, props)) {
            step++;
            String cols = String.join(", ", Arrays.stream(COLUMNS).map(c -> c[0] + " " + c[1]).toList());
            try (Statement st = conn.createStatement()) {
                st.execute("CREATE TABLE " + t + " (id INT NOT NULL, " + cols + ")");
            }
            step++;
            insert(conn, t);
            step++;
            selectTypes(conn, t);
            step++;
            resultSetMetaData(conn, t);
            step++;
            // fusegate's databases are PostgreSQL schemas, so its tables
            // live in `default`; a PostgreSQL cluster puts them in `public`.
            databaseMetaData(conn, t, args.get("dbname").equals("default") ? "default" : "public");
            step++;
            prepared(conn, t);
            step++;
            transactions(conn, url, props, tx);
            step++;
            errors(conn, t);
            try (Statement st = conn.createStatement()) {
                st.execute("DROP TABLE " + t);
                st.execute("DROP TABLE " + tx);
            }
        } catch (Throwable e) {
            String what = e instanceof SQLException s
                ? "SQLException (SQLSTATE " + s.getSQLState() + "): " + s.getMessage()
                : e.toString();
            System.err.println("FAIL jdbc: " + steps[Math.max(step - 1, 0)] + ": " + what);
            System.exit(1);
        }
        System.out.println("jdbc: all " + steps.length + " steps passed (pgjdbc "
            + org.postgresql.util.DriverInfo.DRIVER_VERSION + ")");
    }

    static String names() {
        return String.join(", ", Arrays.stream(COLUMNS).map(c -> c[0]).toList());
    }

    static void insert(Connection conn, String t) throws SQLException {
        String ph = String.join(", ", Collections.nCopies(COLUMNS.length + 1, "?"));
        try (PreparedStatement ps = conn.prepareStatement(
                "INSERT INTO " + t + " (id, " + names() + ") VALUES (" + ph + ")")) {
            for (int r = 0; r < ROWS.length; r++) {
                ps.setInt(1, r);
                for (int c = 0; c < COLUMNS.length; c++) {
                    Object v = ROWS[r][c];
                    if (v == null) ps.setNull(c + 2, JDBC_TYPES[c]);
                    else ps.setObject(c + 2, v);
                }
                ps.addBatch();
            }
            int[] counts = ps.executeBatch();
            eq(counts.length, ROWS.length, "batch result count");
            for (int n : counts) eq(n, 1, "rows per batched INSERT");
        }
    }

    static void selectTypes(Connection conn, String t) throws SQLException {
        try (Statement st = conn.createStatement();
             ResultSet rs = st.executeQuery("SELECT " + names() + " FROM " + t + " ORDER BY id")) {
            for (Object[] want : ROWS) {
                check(rs.next(), "fewer rows than inserted");
                Object[] got = {
                    rs.getShort(1), rs.getInt(2), rs.getLong(3), rs.getFloat(4), rs.getDouble(5),
                    rs.getBigDecimal(6), rs.getString(7), rs.getString(8), rs.getBoolean(9),
                    rs.getDate(10), rs.getTimestamp(11)};
                for (int c = 0; c < COLUMNS.length; c++) {
                    // getObject tells NULL from a zero value the getters return.
                    boolean isNull = rs.getObject(c + 1) == null;
                    eq(isNull, want[c] == null, COLUMNS[c][0] + " is NULL");
                    if (want[c] != null) eq(got[c], want[c], COLUMNS[c][0]);
                }
                eq(rs.getBigDecimal(6) == null ? null : rs.getBigDecimal(6).scale(),
                    want[5] == null ? null : 3, "NUMERIC(12,3) scale");
            }
            check(!rs.next(), "more rows than inserted");
        }
    }

    static void resultSetMetaData(Connection conn, String t) throws SQLException {
        try (Statement st = conn.createStatement();
             ResultSet rs = st.executeQuery("SELECT " + names() + " FROM " + t + " LIMIT 1")) {
            ResultSetMetaData md = rs.getMetaData();
            eq(md.getColumnCount(), COLUMNS.length, "column count");
            for (int c = 0; c < COLUMNS.length; c++) {
                eq(md.getColumnName(c + 1), COLUMNS[c][0], "column name");
                eq(md.getColumnTypeName(c + 1), COLUMNS[c][2], COLUMNS[c][0] + " type name");
                eq(md.getColumnType(c + 1), JDBC_TYPES[c], COLUMNS[c][0] + " java.sql.Types");
            }
            eq(md.getPrecision(6), 12, "NUMERIC(12,3) precision");
            eq(md.getScale(6), 3, "NUMERIC(12,3) scale");
            eq(md.getPrecision(7), 20, "VARCHAR(20) precision");
            eq(md.getColumnClassName(3), "java.lang.Long", "BIGINT class");
        }
    }

    static void databaseMetaData(Connection conn, String t, String ns) throws SQLException {
        DatabaseMetaData md = conn.getMetaData();
        check(md.getDatabaseProductVersion() != null, "product version");
        eq(md.getDatabaseProductName(), "PostgreSQL", "product name");

        Set<String> schemas = new HashSet<>();
        try (ResultSet rs = md.getSchemas()) {
            while (rs.next()) schemas.add(rs.getString("TABLE_SCHEM"));
        }
        check(schemas.contains(ns), "getSchemas has " + ns + ": " + schemas);

        String schema = null;
        try (ResultSet rs = md.getTables(null, null, "jdbc\\_types\\_%", new String[] {"TABLE"})) {
            while (rs.next()) {
                if (rs.getString("TABLE_NAME").equals(t)) {
                    schema = rs.getString("TABLE_SCHEM");
                    eq(rs.getString("TABLE_TYPE"), "TABLE", "TABLE_TYPE");
                }
            }
        }
        eq(schema, ns, "getTables finds " + t + " in schema");

        // Columns as DBeaver/Metabase read them: name, type, size, scale,
        // nullability, in ordinal order.
        List<String> names = new ArrayList<>();
        try (ResultSet rs = md.getColumns(null, ns, t, "%")) {
            while (rs.next()) {
                String name = rs.getString("COLUMN_NAME");
                names.add(name);
                eq(rs.getInt("ORDINAL_POSITION"), names.size(), name + " ORDINAL_POSITION");
                if (name.equals("id")) {
                    eq(rs.getInt("NULLABLE"), DatabaseMetaData.columnNoNulls, "id NULLABLE");
                    eq(rs.getString("IS_NULLABLE"), "NO", "id IS_NULLABLE");
                    continue;
                }
                int c = names.size() - 2;
                eq(rs.getString("TYPE_NAME"), COLUMNS[c][2], name + " TYPE_NAME");
                eq(rs.getInt("DATA_TYPE"), JDBC_TYPES[c], name + " DATA_TYPE");
                eq(rs.getInt("NULLABLE"), DatabaseMetaData.columnNullable, name + " NULLABLE");
                if (name.equals("c_num")) {
                    eq(rs.getInt("COLUMN_SIZE"), 12, "c_num COLUMN_SIZE");
                    eq(rs.getInt("DECIMAL_DIGITS"), 3, "c_num DECIMAL_DIGITS");
                }
                if (name.equals("c_varchar")) eq(rs.getInt("COLUMN_SIZE"), 20, "c_varchar COLUMN_SIZE");
            }
        }
        List<String> want = new ArrayList<>(List.of("id"));
        for (String[] c : COLUMNS) want.add(c[0]);
        eq(names, want, "getColumns names");

        try (ResultSet rs = md.getPrimaryKeys(null, ns, t)) {
            check(!rs.next(), "no primary key");
        }
    }

    static void prepared(Connection conn, String t) throws SQLException {
        // pgjdbc switches to a named server-side statement (and binary
        // results) from the 5th execution on; run past it.
        try (PreparedStatement ps = conn.prepareStatement(
                "SELECT c_int, c_num, c_ts, c_text FROM " + t + " WHERE id = ?")) {
            for (int i = 0; i < 12; i++) {
                int r = i % ROWS.length;
                ps.setInt(1, r);
                try (ResultSet rs = ps.executeQuery()) {
                    check(rs.next(), "row " + r + " (execution " + i + ")");
                    eq(rs.getObject(1), ROWS[r][1], "c_int (execution " + i + ")");
                    eq(rs.getBigDecimal(2), ROWS[r][5], "c_num (execution " + i + ")");
                    eq(rs.getTimestamp(3), ROWS[r][10], "c_ts (execution " + i + ")");
                    eq(rs.getString(4), ROWS[r][7], "c_text (execution " + i + ")");
                    check(!rs.next(), "one row (execution " + i + ")");
                }
            }
        }
        // Typed parameters compared against typed columns.
        try (PreparedStatement ps = conn.prepareStatement(
                "SELECT count(*) FROM " + t + " WHERE c_ts >= ? AND c_num > ? AND c_bool = ?")) {
            for (int i = 0; i < 7; i++) {
                ps.setTimestamp(1, Timestamp.valueOf("2000-01-01 00:00:00"));
                ps.setBigDecimal(2, new BigDecimal("0"));
                ps.setBoolean(3, true);
                try (ResultSet rs = ps.executeQuery()) {
                    check(rs.next(), "count row");
                    eq(rs.getLong(1), 2L, "count with typed parameters (execution " + i + ")");
                }
            }
        }
    }

    static void transactions(Connection conn, String url, Properties props, String tx) throws SQLException {
        try (Statement st = conn.createStatement()) {
            st.execute("CREATE TABLE " + tx + " (a INT)");
        }
        conn.setAutoCommit(false);
        try (Statement st = conn.createStatement()) {
            st.executeUpdate("INSERT INTO " + tx + " VALUES (1)");
            conn.rollback();
            st.executeUpdate("INSERT INTO " + tx + " VALUES (2)");
            st.executeUpdate("INSERT INTO " + tx + " VALUES (3)");
            try (Connection other = DriverManager.getConnection(url, props);
                 Statement os = other.createStatement();
                 ResultSet rs = os.executeQuery("SELECT count(*) FROM " + tx)) {
                rs.next();
                eq(rs.getLong(1), 0L, "uncommitted rows hidden from others");
            }
            conn.commit();
            try (ResultSet rs = st.executeQuery("SELECT a FROM " + tx + " ORDER BY a")) {
                List<Integer> got = new ArrayList<>();
                while (rs.next()) got.add(rs.getInt(1));
                eq(got, List.of(2, 3), "rolled back, then committed");
            }
            conn.commit();
        } finally {
            conn.setAutoCommit(true);
        }
    }

    static void errors(Connection conn, String t) throws SQLException {
        try (Statement st = conn.createStatement()) {
            try {
                st.executeQuery("SELECT * FROM no_such_table_" + t);
                check(false, "undefined table accepted");
            } catch (SQLException e) {
                eq(e.getSQLState(), "42P01", "undefined table SQLSTATE");
            }
            try {
                st.executeQuery("SELECT 1/0");
                check(false, "division by zero accepted");
            } catch (SQLException e) {
                eq(e.getSQLState(), "22012", "division by zero SQLSTATE");
            }
            try (ResultSet rs = st.executeQuery("SELECT count(*) FROM " + t)) {
                rs.next();
                eq(rs.getLong(1), (long) ROWS.length, "connection works after errors");
            }
        }
    }
}
