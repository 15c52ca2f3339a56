#!/usr/bin/env python3
"""psycopg 3 against fusegate (or PostgreSQL, to check the expectations).

    python psycopg_client.py [--host H] [--port P] [--dbname D] [--user U]

Defaults come from PGHOST, PGPORT, PGDATABASE (`default`), PGUSER. Exits
non-zero with a message on the first failed check. Tables are named with a
random suffix, so several scripts can share one server.
"""

import argparse
import datetime as dt
import os
import sys
import uuid
from decimal import Decimal

try:
    import psycopg
    from psycopg import errors, sql
except ImportError as e:  # pragma: no cover
    sys.exit(f"psycopg is missing ({e}): run ./scripts/test to install tests/requirements.txt")

from common import COLUMNS, KEEP_GOING, NAMES

# OIDs PostgreSQL reports for the supported types (pg_type).
OID = dict(int2=21, int4=23, int8=20, float4=700, float8=701, numeric=1700,
           varchar=1043, text=25, bool=16, date=1082, timestamp=1114)


ROWS = [
    (1, 42, 9_000_000_000, 1.5, 2.25, Decimal("12345.678"), "héllo", "it's \"text\"\nline 2",
     True, dt.date(2024, 2, 29), dt.datetime(2024, 5, 1, 9, 30, 0, 123456)),
    (-32768, -2147483648, -9223372036854775808, -0.25, -1e300, Decimal("-0.005"), "", "",
     False, dt.date(1969, 7, 20), dt.datetime(1969, 7, 20, 20, 17, 40)),
    (32767, 2147483647, 9223372036854775807, 3.0e10, 1e-300, Decimal("999999999.999"), "x" * 20,
     "ünïcødé ✓", True, dt.date(9999, 12, 31), dt.datetime(2000, 1, 1, 0, 0, 0)),
    (None,) * 11,
]


# CLIENTS_KEEP_GOING=1 reports every failed check instead of stopping at the
# first (to survey differences); the exit status is non-zero either way.
FAILURES = []


def check(cond, msg):
    if not cond:
        if not KEEP_GOING:
            raise AssertionError(msg)
        FAILURES.append(msg)
        print(f"FAIL psycopg: {msg}", file=sys.stderr)


def eq(got, want, what):
    check(got == want, f"{what}: got {got!r}, want {want!r}")


# Whether the script runs against a real PostgreSQL (to check the checks):
# fusegate's databases are named `default`, PostgreSQL's are not.
ON_POSTGRES = False


def main():
    global ON_POSTGRES
    ap = argparse.ArgumentParser()
    ap.add_argument("--host", default=os.environ.get("PGHOST", "127.0.0.1"))
    ap.add_argument("--port", type=int, default=int(os.environ.get("PGPORT", "5433")))
    ap.add_argument("--dbname", default=os.environ.get("PGDATABASE", "default"))
    ap.add_argument("--user", default=os.environ.get("PGUSER", "tester"))
    args = ap.parse_args()
    ON_POSTGRES = args.dbname != "default"
    conninfo = psycopg.conninfo.make_conninfo(host=args.host, port=args.port,
                                              dbname=args.dbname, user=args.user)
    suffix = uuid.uuid4().hex[:10]
    t = f"pg3_types_{suffix}"
    tx = f"pg3_tx_{suffix}"
    tc = f"pg3_copy_{suffix}"
    tp = f"pg3_prep_{suffix}"
    tn = f"pg3_my_pg_type_{suffix}"

    conn = None

    def setup():
        nonlocal conn
        conn = psycopg.connect(conninfo, autocommit=True)
        check(conn.info.server_version >= 90000, f"server_version {conn.info.server_version}")
        eq(conn.info.parameter_status("client_encoding"), "UTF8", "client_encoding")
        cols = ", ".join(f"{n} {ty}" for n, ty, _ in COLUMNS)
        conn.execute(f"CREATE TABLE {t} (id INT NOT NULL, {cols})")

    def insert():
        ph = ", ".join(["%s"] * (len(COLUMNS) + 1))
        with conn.cursor() as cur:
            cur.executemany(f"INSERT INTO {t} (id, {NAMES}) VALUES ({ph})",
                            [(i,) + r for i, r in enumerate(ROWS)])
            eq(cur.rowcount, len(ROWS), "executemany rowcount")

    steps = [
        ("connect and create table", setup),
        ("executemany insert with %s parameters", insert),
        ("select every type (text results)", lambda: check_types(conn, t, binary=False)),
        ("select every type (binary results)", lambda: check_types(conn, t, binary=True)),
        ("parameters", lambda: check_params(conn, t)),
        ("prepared statements, then DROP/ROLLBACK", lambda: check_prepared(conninfo, tp)),
        ("command tags and rowcount", lambda: check_tags(conn, t)),
        ("transactions", lambda: check_transactions(conninfo, tx)),
        ("errors", lambda: check_errors(conn, conninfo, t)),
        ("COPY", lambda: check_copy(conninfo, tc)),
        ("nested transaction (SAVEPOINT)", lambda: check_savepoint(conninfo, tx)),
        ("server-side (named) cursor", lambda: check_named_cursor(conninfo, t)),
        ("TypeInfo.fetch (pg_type lookup)", lambda: check_typeinfo(conninfo)),
        ("names that contain catalog names", lambda: check_catalog_like_names(conn, tn)),
    ]
    for step, fn in steps:
        try:
            fn()
        except (AssertionError, psycopg.Error) as e:
            if isinstance(e, psycopg.Error):
                e = f"{type(e).__name__} (SQLSTATE {getattr(e, 'sqlstate', None)}): {e}"
            if not KEEP_GOING or conn is None:
                sys.exit(f"FAIL psycopg [{step}]: {e}")
            FAILURES.append(e)
            print(f"FAIL psycopg [{step}]: {e}", file=sys.stderr)
            conn.close()
            conn = psycopg.connect(conninfo, autocommit=True)
    conn.close()
    with psycopg.connect(conninfo, autocommit=True, prepare_threshold=None) as conn:
        for name in (t, tx, tc, tp, tn):
            conn.execute(f"DROP TABLE IF EXISTS {name}")
    if FAILURES:
        sys.exit(f"FAIL psycopg: {len(FAILURES)} failed checks")
    print("psycopg: all checks passed")


def check_params(conn, t):
    with conn.cursor(binary=True) as cur:
        cur.execute(f"SELECT c_num, c_ts FROM {t} WHERE id = %s", [0])
        eq(cur.fetchone(), (ROWS[0][5], ROWS[0][10]), "cursor(binary=True)")
    for i, (name, _, _) in enumerate(COLUMNS):
        for binary in (False, True):
            value = ROWS[0][i]
            cur = conn.execute(
                f"SELECT id FROM {t} WHERE {name} = %s ORDER BY id", [value], binary=binary)
            want = [j for j, r in enumerate(ROWS) if r[i] == value]
            eq([r[0] for r in cur], want, f"WHERE {name} = {value!r} (binary={binary})")
    cur = conn.execute(f"SELECT count(*) FROM {t} WHERE c_int IS NULL")
    eq(cur.fetchone()[0], 1, "count of NULL rows")

    cur = conn.execute("SELECT %s::int + 1, %s::text || 'b', %s::numeric(5,2), %s::date",
                       [41, "a", Decimal("1.5"), dt.date(2020, 1, 2)])
    eq(cur.fetchone(), (42, "ab", Decimal("1.50"), dt.date(2020, 1, 2)), "typed params")
    cur = conn.execute("SELECT %s::bigint, %s::boolean, %s::timestamp",
                       [None, None, dt.datetime(2001, 2, 3, 4, 5, 6, 7)])
    eq(cur.fetchone(), (None, None, dt.datetime(2001, 2, 3, 4, 5, 6, 7)), "NULL params")
    cur = conn.execute(f"SELECT c_int FROM {t} WHERE c_int > %(lo)s AND c_int < %(hi)s",
                       {"lo": 0, "hi": 100})
    eq(cur.fetchall(), [(42,)], "named parameters")
    # The same statement many times: psycopg prepares it server-side
    # after prepare_threshold (5) executions.
    for i in range(8):
        cur = conn.execute(f"SELECT count(*) FROM {t} WHERE id <= %s", [i])
        eq(cur.fetchone()[0], min(i + 1, len(ROWS)), f"prepared, execution {i}")
    cur = conn.execute("SELECT %s::int", [7], prepare=True)
    eq(cur.fetchone()[0], 7, "explicit prepare=True")


def check_prepared(conninfo, tp):
    # psycopg prepares a statement after 5 executions, and once it has
    # prepared statements, a DROP/ALTER/ROLLBACK makes it send DEALLOCATE ALL
    # before the next query (and DEALLOCATE <name> when its cache of 100
    # overflows). Every psycopg application hits this.
    with psycopg.connect(conninfo, autocommit=True) as conn:
        conn.execute(f"CREATE TABLE {tp} (a INT)")
        for i in range(6):
            conn.execute(f"INSERT INTO {tp} VALUES (%s)", [i])
        conn.execute(f"ALTER TABLE {tp} ADD COLUMN b INT")  # -> DEALLOCATE ALL queued
        eq(conn.execute(f"SELECT count(*) FROM {tp}").fetchone()[0], 6, "query after DEALLOCATE ALL")
    with psycopg.connect(conninfo) as conn:
        for i in range(6):
            conn.execute(f"SELECT a FROM {tp} WHERE a = %s", [i])
        conn.rollback()  # -> DEALLOCATE ALL queued
        eq(conn.execute(f"SELECT count(*) FROM {tp} WHERE a = %s", [1]).fetchone()[0], 1,
           "query after rollback of a prepared session")
        conn.rollback()
    with psycopg.connect(conninfo, autocommit=True) as conn:
        conn.prepared_max = 2
        for i in range(4):  # the third distinct statement evicts the first: DEALLOCATE _pg3_0
            eq(conn.execute(f"SELECT a + {i} FROM {tp} WHERE a = %s", [1], prepare=True).fetchone()[0],
               1 + i, f"prepared statement {i} with eviction")
    with psycopg.connect(conninfo, autocommit=True) as conn:
        # SQL-level PREPARE/EXECUTE is not supported by fusegate (README);
        # protocol-level prepared statements above are what drivers use.
        # It fails cleanly, and DEALLOCATE of an unknown name errors as in PostgreSQL.
        if not ON_POSTGRES:
            expect_error(conn, "PREPARE fg_p1 AS SELECT $1::int + 1", errors.FeatureNotSupported, "0A000")
        expect_error(conn, "DEALLOCATE fg_p_unknown", errors.InvalidSqlStatementName, "26000")
        eq(conn.execute("DEALLOCATE ALL").statusmessage, "DEALLOCATE ALL", "DEALLOCATE ALL")
        eq(conn.execute("DISCARD ALL").statusmessage, "DISCARD ALL", "DISCARD ALL")


def check_savepoint(conninfo, tx):
    # A nested conn.transaction() is SAVEPOINT / RELEASE / ROLLBACK TO
    # (SQLAlchemy's psycopg dialect also runs TypeInfo.fetch in one on connect).
    with psycopg.connect(conninfo, autocommit=True, prepare_threshold=None) as conn:
        before = conn.execute(f"SELECT count(*) FROM {tx}").fetchone()[0]
        with conn.transaction():
            conn.execute(f"INSERT INTO {tx} VALUES (10)")
            try:
                with conn.transaction():
                    conn.execute(f"INSERT INTO {tx} VALUES (11)")
                    conn.execute("SELECT * FROM no_such_table_xyz")
            except errors.UndefinedTable:
                pass
            with conn.transaction():
                conn.execute(f"INSERT INTO {tx} VALUES (12)")
        eq(conn.execute(f"SELECT a FROM {tx} WHERE a >= 10 ORDER BY a").fetchall(), [(10,), (12,)],
           "rows after a rolled-back savepoint")
        eq(before, 2, "rows before")


def check_named_cursor(conninfo, t):
    # conn.cursor(name=...) is DECLARE ... CURSOR + FETCH (also what
    # SQLAlchemy's stream_results uses with psycopg).
    with psycopg.connect(conninfo, prepare_threshold=None) as conn:
        if not ON_POSTGRES:
            # DECLARE ... CURSOR is not supported by fusegate (README): a clean
            # 0A000, and the connection carries on after the rollback.
            try:
                with conn.cursor(name="fg_named") as cur:
                    cur.execute(f"SELECT id FROM {t} ORDER BY id")
                raise AssertionError("DECLARE did not fail")
            except errors.FeatureNotSupported as e:
                eq(e.sqlstate, "0A000", "SQLSTATE of DECLARE")
            conn.rollback()
            eq(conn.execute(f"SELECT count(*) FROM {t}").fetchone()[0], 3, "query after DECLARE failed")
            return
        with conn.cursor(name="fg_named") as cur:
            cur.execute(f"SELECT id FROM {t} ORDER BY id")
            eq(cur.fetchmany(2), [(0,), (1,)], "named cursor fetchmany")
            eq(cur.fetchall(), [(2,)], "named cursor fetchall")
        conn.commit()


def check_catalog_like_names(conn, tn):
    # Plain user tables whose names contain "pg_type", "pg_class", ... are
    # ordinary tables (PostgreSQL only reserves the "pg_" prefix for schemas).
    eq(conn.execute(f"CREATE TABLE {tn} (format_type TEXT, pg_class_id INT)").statusmessage,
       "CREATE TABLE", "CREATE TABLE with catalog-like names")
    conn.execute(f"INSERT INTO {tn} VALUES (%s, %s)", ["information_schema", 1])
    eq(conn.execute(f"SELECT format_type, pg_class_id FROM {tn}").fetchall(),
       [("information_schema", 1)], "select catalog-like names")


def check_typeinfo(conninfo):
    from psycopg.types import TypeInfo
    with psycopg.connect(conninfo, autocommit=True) as conn:
        for name, oid in (("int4", 23), ("numeric", 1700), ("varchar", 1043), ("timestamp", 1114)):
            info = TypeInfo.fetch(conn, name)
            check(info is not None, f"TypeInfo.fetch({name!r}) found nothing")
            eq(info.oid, oid, f"TypeInfo.fetch({name!r}).oid")


def check_tags(conn, t):
    cur = conn.execute(f"UPDATE {t} SET c_text = %s WHERE id >= %s", ["upd", 2])
    eq(cur.rowcount, 2, "UPDATE rowcount")
    eq(cur.statusmessage, "UPDATE 2", "UPDATE tag")
    cur = conn.execute(f"DELETE FROM {t} WHERE id = %s", [3])
    eq(cur.statusmessage, "DELETE 1", "DELETE tag")
    cur = conn.execute(f"INSERT INTO {t} (id) VALUES (%s), (%s)", [20, 21])
    eq(cur.statusmessage, "INSERT 0 2", "INSERT tag")
    eq(conn.execute(f"DELETE FROM {t} WHERE id >= 20").rowcount, 2, "DELETE rowcount")
    eq(conn.execute(f"SELECT * FROM {t}").statusmessage, "SELECT 3", "SELECT tag")


def check_types(conn, t, binary):
    cur = conn.execute(f"SELECT {NAMES} FROM {t} ORDER BY id", binary=binary)
    got_oids = [d.type_code for d in cur.description]
    eq(got_oids, [OID[o] for _, _, o in COLUMNS], f"column type OIDs (binary={binary})")
    eq([d.name for d in cur.description], [n for n, _, _ in COLUMNS], "column names")
    # Precision/scale and length modifiers, as drivers read them.
    num = cur.description[5]
    eq((num.precision, num.scale), (12, 3), "NUMERIC(12,3) precision/scale")
    eq(cur.description[6].display_size, 20, "VARCHAR(20) length")
    got = cur.fetchall()
    eq(len(got), len(ROWS), "row count")
    for row, want in zip(got, ROWS):
        for (name, _, _), g, w in zip(COLUMNS, row, want):
            if name == "c_real" and w is not None:
                check(isinstance(g, float) and abs(g - w) <= abs(w) * 1e-6,
                      f"{name}: got {g!r}, want {w!r} (binary={binary})")
                continue
            eq(type(g), type(w), f"{name} Python type (binary={binary})")
            eq(g, w, f"{name} (binary={binary})")
    # Decimal keeps its scale, as PostgreSQL sends it.
    eq(str(got[1][5]), "-0.005", "NUMERIC text")
    eq(str(got[0][5]), "12345.678", "NUMERIC text")


def check_transactions(conninfo, tx):
    # prepare_threshold=None: the DEALLOCATE ALL psycopg sends after a
    # ROLLBACK is checked by check_prepared.
    with psycopg.connect(conninfo, prepare_threshold=None) as conn:  # not autocommit: BEGIN
        conn.execute(f"CREATE TABLE {tx} (a INT)")
        conn.commit()
        conn.execute(f"INSERT INTO {tx} VALUES (1)")
        eq(conn.info.transaction_status, psycopg.pq.TransactionStatus.INTRANS, "status after INSERT")
        conn.rollback()
        eq(conn.execute(f"SELECT count(*) FROM {tx}").fetchone()[0], 0, "rollback discards")
        conn.execute(f"INSERT INTO {tx} VALUES (2)")
        conn.commit()
        with psycopg.connect(conninfo, autocommit=True) as other:
            eq(other.execute(f"SELECT a FROM {tx}").fetchall(), [(2,)], "commit visible to others")
        conn.commit()

    with psycopg.connect(conninfo, autocommit=True, prepare_threshold=None) as conn:
        with conn.transaction():
            conn.execute(f"INSERT INTO {tx} VALUES (3)")
            eq(conn.info.transaction_status, psycopg.pq.TransactionStatus.INTRANS, "in transaction()")
            # Own writes visible inside, others don't see them yet.
            eq(conn.execute(f"SELECT count(*) FROM {tx}").fetchone()[0], 2, "own write visible")
            with psycopg.connect(conninfo, autocommit=True) as other:
                eq(other.execute(f"SELECT count(*) FROM {tx}").fetchone()[0], 1, "uncommitted hidden")
        eq(conn.execute(f"SELECT count(*) FROM {tx}").fetchone()[0], 2, "transaction() committed")

        class Boom(Exception):
            pass

        try:
            with conn.transaction():
                conn.execute(f"INSERT INTO {tx} VALUES (4)")
                raise Boom()
        except Boom:
            pass
        eq(conn.execute(f"SELECT count(*) FROM {tx}").fetchone()[0], 2, "transaction() rolled back")

        with conn.transaction() as txn:
            conn.execute(f"INSERT INTO {tx} VALUES (5)")
            raise_rollback = psycopg.Rollback(txn)
            raise raise_rollback
        eq(conn.execute(f"SELECT count(*) FROM {tx}").fetchone()[0], 2, "psycopg.Rollback")

        # A failed statement aborts the transaction: 25P02 until rollback.
        try:
            with conn.transaction():
                conn.execute(f"INSERT INTO {tx} VALUES (6)")
                try:
                    conn.execute("SELECT * FROM no_such_table_xyz")
                except errors.UndefinedTable:
                    pass
                else:
                    raise AssertionError("missing table did not fail")
                try:
                    conn.execute("SELECT 1")
                except errors.InFailedSqlTransaction:
                    raise Boom()
                raise AssertionError("statement after error in transaction did not fail with 25P02")
        except Boom:
            pass
        eq(conn.execute(f"SELECT count(*) FROM {tx}").fetchone()[0], 2, "aborted transaction wrote nothing")
        eq(conn.info.transaction_status, psycopg.pq.TransactionStatus.IDLE, "idle after rollback")


def expect_error(conn, query, cls, sqlstate, params=None):
    try:
        conn.execute(query, params)
    except psycopg.Error as e:
        check(isinstance(e, cls),
              f"{query!r}: got {type(e).__name__} (SQLSTATE {e.sqlstate}): {e}, want {cls.__name__}")
        eq(e.sqlstate, sqlstate, f"SQLSTATE of {query!r}")
        check(e.diag.message_primary, f"{query!r}: error without a message")
        return e
    raise AssertionError(f"{query!r} did not fail")


def check_errors(conn, conninfo, t):
    conn.prepare_threshold = None
    # autocommit connection: each error is its own statement.
    expect_error(conn, "SELECT * FROM no_such_table_xyz", errors.UndefinedTable, "42P01")
    expect_error(conn, f"SELECT no_such_column FROM {t}", errors.UndefinedColumn, "42703")
    expect_error(conn, "SELEC 1", errors.SyntaxError, "42601")
    expect_error(conn, "SELECT 1/0", errors.DivisionByZero, "22012")
    expect_error(conn, f"INSERT INTO {t} (id) VALUES (NULL)", errors.NotNullViolation, "23502")
    expect_error(conn, f"INSERT INTO {t} (id, c_varchar) VALUES (%s, %s)",
                 errors.StringDataRightTruncation, "22001", [9, "y" * 21])
    expect_error(conn, f"CREATE TABLE {t} (a INT)", errors.DuplicateTable, "42P07")
    expect_error(conn, "SELECT 'abc'::int", errors.InvalidTextRepresentation, "22P02")
    eq(conn.execute("SELECT 1").fetchone()[0], 1, "autocommit connection usable after errors")

    # Not autocommit: the error aborts the implicit transaction; rollback recovers.
    with psycopg.connect(conninfo, prepare_threshold=None) as c2:
        try:
            c2.execute("SELECT * FROM no_such_table_xyz")
            raise AssertionError("missing table did not fail")
        except errors.UndefinedTable as e:
            eq(e.sqlstate, "42P01", "UndefinedTable sqlstate")
        eq(c2.info.transaction_status, psycopg.pq.TransactionStatus.INERROR, "status after error")
        try:
            c2.execute("SELECT 1")
            raise AssertionError("statement in failed transaction did not fail")
        except errors.InFailedSqlTransaction as e:
            eq(e.sqlstate, "25P02", "in failed transaction sqlstate")
        c2.rollback()
        eq(c2.execute(f"SELECT count(*) FROM {t}").fetchone()[0], 3, "usable after rollback")
        # An error during executemany, then recovery.
        try:
            with c2.cursor() as cur:
                cur.executemany(f"INSERT INTO {t} (id) VALUES (%s)", [(10,), (None,)])
            raise AssertionError("executemany with NULL into NOT NULL did not fail")
        except errors.NotNullViolation:
            pass
        c2.rollback()
        eq(c2.execute(f"SELECT count(*) FROM {t} WHERE id = 10").fetchone()[0], 0,
           "failed executemany rolled back")


def check_copy(conninfo, tc):
    with psycopg.connect(conninfo, autocommit=True) as conn:
        copy_in_out(conn, tc)


def copy_in_out(conn, tc):
    conn.execute(f"CREATE TABLE {tc} (a INT, b TEXT, c NUMERIC(8,2), d DATE, e TIMESTAMP, f BOOLEAN)")
    rows = [
        (1, "plain", Decimal("1.50"), dt.date(2024, 1, 2), dt.datetime(2024, 1, 2, 3, 4, 5), True),
        (2, "tab\there\nnewline \\ backslash", Decimal("-2.25"), dt.date(1999, 12, 31),
         dt.datetime(1999, 12, 31, 23, 59, 59, 999999), False),
        (3, None, None, None, None, None),
        (4, "", Decimal("0.00"), dt.date(2000, 2, 29), dt.datetime(2000, 2, 29, 12, 0), True),
    ]
    with conn.cursor() as cur:
        with cur.copy(f"COPY {tc} FROM STDIN") as copy:
            for r in rows:
                copy.write_row(r)
        eq(cur.rowcount, len(rows), "COPY FROM rowcount")
        eq(cur.statusmessage, f"COPY {len(rows)}", "COPY FROM command tag")
    got = conn.execute(f"SELECT * FROM {tc} ORDER BY a").fetchall()
    eq(got, rows, "rows loaded by COPY FROM STDIN")

    # A column list, with raw text written in chunks.
    with conn.cursor() as cur:
        with cur.copy(f"COPY {tc} (b, a) FROM STDIN") as copy:
            copy.write("five\t5\nsi")
            copy.write("x\t6\n")
    eq(conn.execute(f"SELECT b FROM {tc} WHERE a >= 5 ORDER BY a").fetchall(),
       [("five",), ("six",)], "COPY with column list and chunks")

    # CSV.
    with conn.cursor() as cur:
        with cur.copy(f"COPY {tc} (a, b) FROM STDIN WITH (FORMAT csv, HEADER true)") as copy:
            copy.write('a,b\n7,"q ""u"", o"\n8,\n')
    eq(conn.execute(f"SELECT a, b FROM {tc} WHERE a >= 7 ORDER BY a").fetchall(),
       [(7, 'q "u", o'), (8, None)], "COPY CSV")

    # A bad row fails the whole COPY and loads nothing.
    try:
        with conn.cursor() as cur:
            with cur.copy(f"COPY {tc} (a) FROM STDIN") as copy:
                copy.write("100\nnot_a_number\n")
        raise AssertionError("COPY with a bad row did not fail")
    except errors.InvalidTextRepresentation as e:
        eq(e.sqlstate, "22P02", "COPY bad row sqlstate")
    eq(conn.execute(f"SELECT count(*) FROM {tc} WHERE a = 100").fetchone()[0], 0,
       "failed COPY loaded nothing")

    # COPY TO STDOUT, rows parsed by psycopg (text format), typed via set_types.
    with conn.cursor() as cur:
        with cur.copy(f"COPY (SELECT * FROM {tc} WHERE a <= 4 ORDER BY a) TO STDOUT") as copy:
            copy.set_types(["int4", "text", "numeric", "date", "timestamp", "bool"])
            got = list(copy.rows())
        eq(got, rows, "COPY TO STDOUT rows")
        eq(cur.rowcount, 4, "COPY TO rowcount")
    with conn.cursor() as cur:
        with cur.copy(f"COPY {tc} (a, b) TO STDOUT") as copy:
            got = sorted(copy.rows(), key=lambda r: int(r[0]))
        eq(got[:3], [("1", "plain"), ("2", "tab\there\nnewline \\ backslash"), ("3", None)],
           "COPY table TO STDOUT untyped rows")
    with conn.cursor() as cur:
        with cur.copy(f"COPY (SELECT a, b FROM {tc} WHERE a IN (2, 3, 7) ORDER BY a) "
                      "TO STDOUT WITH (FORMAT csv, HEADER)") as copy:
            data = b"".join(bytes(b) for b in copy)
        eq(data.decode(), 'a,b\n2,"tab\there\nnewline \\ backslash"\n3,\n7,"q ""u"", o"\n',
           "COPY TO STDOUT CSV")

    # Binary COPY is not supported by fusegate (README: 0A000) — not checked here.


if __name__ == "__main__":
    main()
