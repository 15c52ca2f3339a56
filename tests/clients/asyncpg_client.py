#!/usr/bin/env python3
"""asyncpg against fusegate (or PostgreSQL, to check the expectations).

    python asyncpg_client.py [--host H] [--port P] [--dbname D] [--user U]

Defaults come from PGHOST, PGPORT, PGDATABASE (`default`), PGUSER. asyncpg
always uses the extended protocol with binary results. Exits non-zero with a
message on the first failed check (CLIENTS_KEEP_GOING=1: report every failed
step, still exit non-zero). Tables get a random suffix.
"""

import argparse
import asyncio
import datetime as dt
import os
import sys
import uuid
from decimal import Decimal

try:
    import asyncpg
except ImportError as e:  # pragma: no cover
    sys.exit(f"asyncpg is missing ({e}): run ./scripts/test to install tests/requirements.txt")

from common import COLUMNS, KEEP_GOING, NAMES, check, eq

# Against a real PostgreSQL (to check the checks): its databases are not
# named `default`, fusegate's are.
ON_POSTGRES = False


ROWS = [
    (1, 42, 9_000_000_000, 1.5, 2.25, Decimal("12345.678"), "héllo", "it's \"text\"\nline 2",
     True, dt.date(2024, 2, 29), dt.datetime(2024, 5, 1, 9, 30, 0, 123456)),
    (-32768, -2147483648, -9223372036854775808, -0.25, -1e300, Decimal("-0.005"), "", "",
     False, dt.date(1969, 7, 20), dt.datetime(1969, 7, 20, 20, 17, 40)),
    (32767, 2147483647, 9223372036854775807, 3.0e10, 1e-300, Decimal("999999999.999"), "x" * 20,
     "ünïcødé ✓", True, dt.date(2999, 12, 31), dt.datetime(2000, 1, 1, 0, 0, 0)),
    (None,) * 11,
]
# Not date(9999, 12, 31): asyncpg encodes date.max/date.min and
# datetime.max/datetime.min as PostgreSQL's 'infinity'/'-infinity', which
# fusegate's DATE/TIMESTAMP cannot hold (22023 "value too large to decode").


def check_row(got, want, what):
    for (name, _, _), g, w in zip(COLUMNS, got, want):
        if name == "c_real" and w is not None:
            check(isinstance(g, float) and abs(g - w) <= abs(w) * 1e-6,
                  f"{what} {name}: got {g!r}, want {w!r}")
            continue
        eq(type(g), type(w), f"{what} {name} Python type")
        eq(g, w, f"{what} {name}")


async def check_types(conn, t):
    # Plain fetch: asyncpg prepares an unnamed statement and asks for binary results.
    rows = await conn.fetch(f"SELECT {NAMES} FROM {t} ORDER BY id")
    eq(len(rows), len(ROWS), "row count")
    for got, want in zip(rows, ROWS):
        check_row(tuple(got), want, "fetch")
    eq(list(rows[0].keys()), [n for n, _, _ in COLUMNS], "record keys")
    eq(rows[0]["c_num"], Decimal("12345.678"), "record by name")

    # Types as asyncpg sees them from the statement description.
    stmt = await conn.prepare(f"SELECT {NAMES} FROM {t} ORDER BY id")
    eq([a.type.name for a in stmt.get_attributes()], [ty for _, _, ty in COLUMNS],
       "attribute types of a prepared SELECT")
    eq([a.name for a in stmt.get_attributes()], [n for n, _, _ in COLUMNS], "attribute names")

    # Values as parameters of every type (binary parameters), including NULL.
    for i, (name, _, ty) in enumerate(COLUMNS):
        stmt = await conn.prepare(f"SELECT id FROM {t} WHERE {name} = $1 ORDER BY id")
        # PostgreSQL compares varchar with text: the parameter is text.
        want_ty = "text" if ty == "varchar" else ty
        eq([p.name for p in stmt.get_parameters()], [want_ty], f"parameter type of {name} = $1")
        want = [j for j, r in enumerate(ROWS) if r[i] == ROWS[0][i]]
        eq([r[0] for r in await stmt.fetch(ROWS[0][i])], want, f"WHERE {name} = $1")
        eq(await stmt.fetch(None), [], f"WHERE {name} = NULL")

    # Round trip through typed parameters.
    row = await conn.fetchrow(
        "SELECT $1::smallint, $2::int, $3::bigint, $4::real, $5::double precision, "
        "$6::numeric(12,3), $7::varchar(20), $8::text, $9::boolean, $10::date, $11::timestamp",
        *ROWS[0])
    check_row(tuple(row), ROWS[0], "typed parameters")
    row = await conn.fetchrow(
        "SELECT $1::smallint, $2::int, $3::bigint, $4::real, $5::double precision, "
        "$6::numeric(12,3), $7::varchar(20), $8::text, $9::boolean, $10::date, $11::timestamp",
        *ROWS[3])
    eq(tuple(row), ROWS[3], "NULL typed parameters")


async def check_prepared(conn, t):
    stmt = await conn.prepare(f"SELECT id, c_int FROM {t} WHERE id >= $1 AND id < $2 ORDER BY id")
    eq([tuple(r) for r in await stmt.fetch(0, 2)], [(0, 42), (1, -2147483648)], "fetch(0, 2)")
    eq([tuple(r) for r in await stmt.fetch(2, 10)], [(2, 2147483647), (3, None)], "fetch(2, 10)")
    eq(await stmt.fetchval(1, 2, column=1), -2147483648, "fetchval")
    eq(tuple(await stmt.fetchrow(3, 4)), (3, None), "fetchrow")
    eq(await stmt.fetchrow(100, 200), None, "fetchrow with no rows")
    # Many executions of the same statement, and of statements from the cache.
    for i in range(10):
        eq(await conn.fetchval(f"SELECT count(*) FROM {t} WHERE id <= $1", i),
           min(i + 1, len(ROWS)), f"cached statement, execution {i}")
    eq(await conn.fetchval("SELECT $1::int + $2::int", 40, 2), 42, "int parameters")
    eq(await conn.fetchval("SELECT $1::text || $2::text", "a", "b"), "ab", "text parameters")
    # Explicitly named statements are closed on garbage collection / close.
    stmt = await conn.prepare("SELECT $1::bigint * 2", name="fg_named_stmt")
    eq(await stmt.fetchval(21), 42, "named prepared statement")

    # Cursors inside a transaction (portals with a row limit).
    async with conn.transaction():
        got = [r["id"] async for r in conn.cursor(f"SELECT id FROM {t} ORDER BY id", prefetch=2)]
        eq(got, [0, 1, 2, 3], "cursor iteration with prefetch")
        cur = await conn.cursor(f"SELECT id FROM {t} ORDER BY id")
        eq([r[0] for r in await cur.fetch(3)], [0, 1, 2], "cursor.fetch(3)")
        eq((await cur.fetchrow())[0], 3, "cursor.fetchrow")


async def check_executemany(conn, t):
    await conn.execute(f"CREATE TABLE {t} (a INT NOT NULL, b TEXT, c NUMERIC(10,2), d TIMESTAMP)")
    rows = [(i, f"r{i}" if i % 3 else None, Decimal(i) / 4, dt.datetime(2024, 1, 1) + dt.timedelta(hours=i))
            for i in range(50)]
    await conn.executemany(f"INSERT INTO {t} VALUES ($1, $2, $3, $4)", rows)
    got = await conn.fetch(f"SELECT a, b, c, d FROM {t} ORDER BY a")
    eq([tuple(r) for r in got], [(a, b, c.quantize(Decimal("0.01")), d) for a, b, c, d in rows],
       "rows inserted by executemany")
    # A failing executemany inserts nothing (it runs in one transaction).
    try:
        await conn.executemany(f"INSERT INTO {t} (a) VALUES ($1)", [(100,), (None,)])
        raise AssertionError("executemany with NULL into NOT NULL did not fail")
    except asyncpg.NotNullViolationError as e:
        eq(e.sqlstate, "23502", "NOT NULL sqlstate")
    eq(await conn.fetchval(f"SELECT count(*) FROM {t} WHERE a = 100"), 0, "failed executemany")
    eq(await conn.execute(f"UPDATE {t} SET b = $1 WHERE a < $2", "u", 10), "UPDATE 10", "UPDATE tag")
    eq(await conn.execute(f"DELETE FROM {t} WHERE a >= 40"), "DELETE 10", "DELETE tag")
    eq(await conn.execute(f"INSERT INTO {t} (a) VALUES (1000), (1001)"), "INSERT 0 2", "INSERT tag")


async def check_transactions_errors(conn, t):
    async with conn.transaction():
        await conn.execute(f"INSERT INTO {t} (a) VALUES (2000)")
    eq(await conn.fetchval(f"SELECT count(*) FROM {t} WHERE a = 2000"), 1, "committed")

    class Boom(Exception):
        pass

    try:
        async with conn.transaction():
            await conn.execute(f"INSERT INTO {t} (a) VALUES (2001)")
            raise Boom()
    except Boom:
        pass
    eq(await conn.fetchval(f"SELECT count(*) FROM {t} WHERE a = 2001"), 0, "rolled back")

    async def expect(query, cls, sqlstate, *args):
        try:
            await conn.execute(query, *args)
        except asyncpg.PostgresError as e:
            check(isinstance(e, cls), f"{query!r}: got {type(e).__name__} ({e.sqlstate}): {e}")
            eq(e.sqlstate, sqlstate, f"SQLSTATE of {query!r}")
            return
        raise AssertionError(f"{query!r} did not fail")

    await expect("SELECT * FROM no_such_table_xyz", asyncpg.UndefinedTableError, "42P01")
    await expect(f"SELECT nope FROM {t}", asyncpg.UndefinedColumnError, "42703")
    await expect("SELEC 1", asyncpg.PostgresSyntaxError, "42601")
    await expect("SELECT 1/0", asyncpg.DivisionByZeroError, "22012")
    await expect(f"INSERT INTO {t} (a) VALUES ($1)", asyncpg.NotNullViolationError, "23502", None)
    eq(await conn.fetchval("SELECT 1::int"), 1, "usable after errors")
    try:
        async with conn.transaction():
            try:
                await conn.execute("SELECT * FROM no_such_table_xyz")
            except asyncpg.UndefinedTableError:
                pass
            await expect("SELECT 1", asyncpg.InFailedSQLTransactionError, "25P02")
            raise Boom()
    except Boom:
        pass
    eq(await conn.fetchval("SELECT 2::int"), 2, "usable after failed transaction")


async def check_introspection(conn):
    # Every type fusegate supports must decode without asyncpg having to run
    # its pg_catalog introspection query with a failure; typed NULLs too.
    row = await conn.fetchrow(
        "SELECT NULL::smallint, NULL::int, NULL::bigint, NULL::real, NULL::double precision, "
        "NULL::numeric, NULL::varchar, NULL::text, NULL::boolean, NULL::date, NULL::timestamp")
    eq(tuple(row), (None,) * 11, "typed NULLs")
    # Untyped literals (PostgreSQL: text for 'a' and for NULL).
    eq(tuple(await conn.fetchrow("SELECT 'a', NULL")), ("a", None), "untyped literals")
    # set_type_codec looks the type up in pg_type/pg_namespace (asyncpg's
    # introspection query, the one it runs for any type it does not know).
    await conn.set_type_codec("numeric", schema="pg_catalog", encoder=str, decoder=Decimal,
                              format="text")
    eq(await conn.fetchval("SELECT $1::numeric(6,2)", "12.5"), Decimal("12.50"), "numeric text codec")
    await conn.reset_type_codec("numeric", schema="pg_catalog")
    eq(await conn.fetchval("SELECT 1.5::numeric(4,2)"), Decimal("1.50"), "numeric codec reset")


async def check_copy(conn, t):
    # copy_records_to_table is binary COPY, which fusegate does not support
    # (README: binary COPY 0A000) — not checked.
    tc = t + "_copy"
    await conn.execute(f"CREATE TABLE {tc} (a INT, b TEXT, c DATE)")
    data = 'a,b,c\n1,"x, ""y""",2024-01-02\n2,,\n'
    import io
    res = await conn.copy_to_table(tc, source=io.BytesIO(data.encode()), format="csv", header=True)
    eq(res, "COPY 2", "copy_to_table tag")
    eq([tuple(r) for r in await conn.fetch(f"SELECT * FROM {tc} ORDER BY a")],
       [(1, 'x, "y"', dt.date(2024, 1, 2)), (2, None, None)], "rows from copy_to_table (csv)")
    res = await conn.copy_to_table(tc, source=io.BytesIO(b"3\tt\t2000-02-29\n"), columns=["a", "b", "c"])
    eq(res, "COPY 1", "copy_to_table text format tag")

    out = io.BytesIO()
    res = await conn.copy_from_query(f"SELECT a, b, c FROM {tc} ORDER BY a", output=out, format="csv")
    eq(res, "COPY 3", "copy_from_query tag")
    eq(out.getvalue().decode(), '1,"x, ""y""",2024-01-02\n2,,\n3,t,2000-02-29\n', "copy_from_query csv")
    out = io.BytesIO()
    res = await conn.copy_from_table(tc, output=out, columns=["a", "b"], format="text")
    eq(sorted(out.getvalue().decode().splitlines()), ['1\tx, "y"', "2\t\\N", "3\tt"], "copy_from_table text")
    await conn.execute(f"DROP TABLE {tc}")


async def run(dsn_kwargs):
    suffix = uuid.uuid4().hex[:10]
    t = f"apg_t_{suffix}"
    tm = f"apg_many_{suffix}"
    failures = []

    conn = await asyncpg.connect(**dsn_kwargs)

    async def setup():
        cols = ", ".join(f"{n} {ty}" for n, ty, _ in COLUMNS)
        eq(await conn.execute(f"CREATE TABLE {t} (id INT NOT NULL, {cols})"), "CREATE TABLE", "tag")
        ph = ", ".join(f"${i + 1}" for i in range(len(COLUMNS) + 1))
        await conn.executemany(f"INSERT INTO {t} (id, {NAMES}) VALUES ({ph})",
                               [(i,) + r for i, r in enumerate(ROWS)])

    steps = [
        ("create table and executemany every type", setup),
        ("binary results and parameters of every type", lambda: check_types(conn, t)),
        ("prepared statements and cursors", lambda: check_prepared(conn, t)),
        ("executemany", lambda: check_executemany(conn, tm)),
        ("transactions and errors", lambda: check_transactions_errors(conn, tm)),
        ("type introspection", lambda: check_introspection(conn)),
        ("COPY (csv/text)", lambda: check_copy(conn, t)),
    ]
    for step, fn in steps:
        try:
            await fn()
        except (AssertionError, asyncpg.PostgresError, asyncpg.InterfaceError) as e:
            if isinstance(e, asyncpg.PostgresError):
                e = f"{type(e).__name__} (SQLSTATE {e.sqlstate}): {e}"
            if not KEEP_GOING:
                sys.exit(f"FAIL asyncpg [{step}]: {e}")
            failures.append(e)
            print(f"FAIL asyncpg [{step}]: {e}", file=sys.stderr)
            await conn.close()
            conn = await asyncpg.connect(**dsn_kwargs)
    for name in (t, tm, t + "_copy"):
        await conn.execute(f"DROP TABLE IF EXISTS {name}")
    await conn.close()
    if failures:
        sys.exit(f"FAIL asyncpg: {len(failures)} failed steps")
    print("asyncpg: all checks passed")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--host", default=os.environ.get("PGHOST", "127.0.0.1"))
    ap.add_argument("--port", type=int, default=int(os.environ.get("PGPORT", "5433")))
    ap.add_argument("--dbname", default=os.environ.get("PGDATABASE", "default"))
    ap.add_argument("--user", default=os.environ.get("PGUSER", "tester"))
    args = ap.parse_args()
    global ON_POSTGRES
    ON_POSTGRES = args.dbname != "default"
    asyncio.run(run(dict(host=args.host, port=args.port, database=args.dbname, user=args.user)))


if __name__ == "__main__":
    main()
