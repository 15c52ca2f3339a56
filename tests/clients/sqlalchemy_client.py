#!/usr/bin/env python3
"""SQLAlchemy 2 (psycopg 3 driver) against fusegate, or PostgreSQL.

    python sqlalchemy_client.py [--host H] [--port P] [--dbname D] [--user U] [--schema S]

Defaults come from PGHOST, PGPORT, PGDATABASE (`default`), PGUSER; the schema
defaults to the database name when it is `default` (each fusegate database is
a PostgreSQL schema) and to `public` otherwise. Exits non-zero with a message
on the first failed check (CLIENTS_KEEP_GOING=1: report every failed step).
"""

import argparse
import datetime as dt
import os
import sys
import uuid
from decimal import Decimal

try:
    import sqlalchemy as sa
    from sqlalchemy.dialects import postgresql as pg
except ImportError as e:  # pragma: no cover
    sys.exit(f"SQLAlchemy is missing ({e}): run ./scripts/test to install tests/requirements.txt")

from common import KEEP_GOING, check, eq

# (column DDL, SQLAlchemy type class the inspector must report, attributes, nullable)
COLUMNS = [
    ("id", "BIGINT NOT NULL", sa.BIGINT, {}, False),
    ("c_small", "SMALLINT", sa.SMALLINT, {}, True),
    ("c_int", "INTEGER NOT NULL", sa.INTEGER, {}, False),
    ("c_real", "REAL", sa.REAL, {}, True),
    ("c_double", "DOUBLE PRECISION", pg.DOUBLE_PRECISION, {}, True),
    ("c_num", "NUMERIC(10,2)", sa.NUMERIC, {"precision": 10, "scale": 2}, True),
    ("c_varchar", "VARCHAR(40) NOT NULL", sa.VARCHAR, {"length": 40}, False),
    ("c_text", "TEXT", sa.TEXT, {}, True),
    ("c_bool", "BOOLEAN", sa.BOOLEAN, {}, True),
    ("c_date", "DATE", sa.DATE, {}, True),
    ("c_ts", "TIMESTAMP", pg.TIMESTAMP, {"timezone": False}, True),
]


def check_inspector(engine, schema, t, t2):
    insp = sa.inspect(engine)
    schemas = insp.get_schema_names()
    check(schema in schemas, f"get_schema_names(): {schema!r} not in {schemas!r}")
    eq(insp.default_schema_name, schema, "default_schema_name")

    tables = insp.get_table_names(schema=schema)
    check(t in tables and t2 in tables, f"get_table_names(schema={schema!r}): {t}, {t2} not in {tables!r}")
    check(t in insp.get_table_names(), f"get_table_names() without schema: {t} missing")
    check(insp.has_table(t, schema=schema), f"has_table({t!r})")
    check(not insp.has_table("no_such_table_xyz", schema=schema), "has_table(missing)")
    check(t not in insp.get_view_names(schema=schema), "get_view_names")

    cols = insp.get_columns(t, schema=schema)
    eq([c["name"] for c in cols], [c[0] for c in COLUMNS], f"get_columns({t!r}) names")
    for col, (name, ddl, cls, attrs, nullable) in zip(cols, COLUMNS):
        check(type(col["type"]) is cls,
              f"get_columns {name} ({ddl}): type {type(col['type']).__name__} {col['type']!r}, want {cls.__name__}")
        for k, v in attrs.items():
            eq(getattr(col["type"], k), v, f"get_columns {name}.type.{k}")
        eq(col["nullable"], nullable, f"get_columns {name} nullable")
    eq(cols[2]["default"], None, "no default")

    cols2 = {c["name"]: c for c in insp.get_columns(t2, schema=schema)}
    check(cols2["n"]["default"] is not None and "7" in cols2["n"]["default"],
          f"get_columns default of n: {cols2['n']['default']!r}, want an expression with 7")

    # Reflection of the whole table, as ORMs and Alembic do.
    md = sa.MetaData()
    tbl = sa.Table(t, md, autoload_with=engine, schema=schema)
    eq([c.name for c in tbl.columns], [c[0] for c in COLUMNS], "reflected Table columns")
    eq(insp.get_pk_constraint(t, schema=schema)["constrained_columns"], [], "no primary key")
    eq(insp.get_foreign_keys(t, schema=schema), [], "no foreign keys")
    eq(insp.get_indexes(t, schema=schema), [], "no indexes")
    eq(insp.get_unique_constraints(t, schema=schema), [], "no unique constraints")
    eq(insp.get_check_constraints(t, schema=schema), [], "no check constraints")
    eq(insp.get_table_comment(t, schema=schema), {"text": None}, "no table comment")
    return tbl


def check_core(engine, tbl):
    rows = [
        dict(id=1, c_small=1, c_int=10, c_real=0.5, c_double=1.25, c_num=Decimal("12.50"),
             c_varchar="ada", c_text="t1", c_bool=True, c_date=dt.date(2024, 5, 1),
             c_ts=dt.datetime(2024, 5, 1, 9, 30)),
        dict(id=2, c_small=None, c_int=20, c_real=None, c_double=None, c_num=Decimal("7.25"),
             c_varchar="brian", c_text=None, c_bool=False, c_date=None,
             c_ts=dt.datetime(2024, 5, 1, 10, 2, 13, 500000)),
        dict(id=3, c_small=-3, c_int=30, c_real=-1.0, c_double=None, c_num=None,
             c_varchar="ada", c_text="", c_bool=None, c_date=dt.date(1999, 12, 31), c_ts=None),
    ]
    with engine.begin() as conn:
        conn.execute(tbl.insert(), rows)  # executemany ("insertmanyvalues": rowcount is -1)
    with engine.connect() as conn:
        got = conn.execute(sa.select(tbl).order_by(tbl.c.id)).mappings().all()
        eq([dict(r) for r in got], rows, "select all rows")
        q = (sa.select(tbl.c.c_varchar, sa.func.sum(tbl.c.c_num).label("total"),
                       sa.func.count().label("n"))
             .where(tbl.c.c_int >= sa.bindparam("lo"))
             .group_by(tbl.c.c_varchar)
             .order_by(tbl.c.c_varchar))
        eq(conn.execute(q, {"lo": 10}).all(), [("ada", Decimal("12.50"), 2), ("brian", Decimal("7.25"), 1)],
           "group by with bound parameter")
        q = sa.select(tbl.c.id).where(tbl.c.c_ts > dt.datetime(2024, 5, 1, 10)).where(tbl.c.c_bool.is_(False))
        eq(conn.execute(q).scalars().all(), [2], "where on timestamp and boolean")
        q = sa.select(tbl.c.id).where(tbl.c.c_varchar.in_(["brian", "zed"]))
        eq(conn.execute(q).scalars().all(), [2], "IN with an expanding parameter")
        q = sa.select(tbl.c.id).where(tbl.c.c_text.like("t%")).limit(5).offset(0)
        eq(conn.execute(q).scalars().all(), [1], "LIKE with LIMIT/OFFSET")
        eq(conn.scalar(sa.select(sa.func.count()).select_from(tbl)), 3, "count")

    with engine.begin() as conn:
        res = conn.execute(tbl.update().where(tbl.c.id == 3).values(c_text="upd"))
        eq(res.rowcount, 1, "update rowcount")
        res = conn.execute(tbl.delete().where(tbl.c.id == 2))
        eq(res.rowcount, 1, "delete rowcount")
    try:
        with engine.begin() as conn:
            conn.execute(tbl.insert(), [dict(id=9, c_int=9, c_varchar="x")])
            conn.execute(sa.text("SELECT * FROM no_such_table_xyz"))
        raise AssertionError("missing table did not fail")
    except sa.exc.ProgrammingError as e:
        eq(getattr(e.orig, "sqlstate", None), "42P01", "SQLSTATE through SQLAlchemy")
    with engine.connect() as conn:
        eq(conn.execute(sa.select(tbl.c.id).order_by(tbl.c.id)).scalars().all(), [1, 3],
           "rolled-back transaction left nothing")


def check_metadata_create(engine, schema, suffix):
    # MetaData.create_all / drop_all: SQLAlchemy checks has_table, then issues DDL.
    md = sa.MetaData(schema=schema)
    t3 = sa.Table(f"sa_created_{suffix}", md,
                  sa.Column("a", sa.Integer, nullable=False),
                  sa.Column("b", sa.String(10)),
                  sa.Column("c", sa.Numeric(8, 3)),
                  sa.Column("d", sa.DateTime))
    md.create_all(engine)
    check(sa.inspect(engine).has_table(t3.name, schema=schema), "create_all made the table")
    with engine.begin() as conn:
        conn.execute(t3.insert(), [dict(a=1, b="x", c=Decimal("1.500"), d=dt.datetime(2024, 1, 2, 3, 4, 5))])
        eq(conn.execute(sa.select(t3)).all(), [(1, "x", Decimal("1.500"), dt.datetime(2024, 1, 2, 3, 4, 5))],
           "round trip through a create_all table")
    cols = sa.inspect(engine).get_columns(t3.name, schema=schema)
    eq([(c["name"], type(c["type"]).__name__, c["nullable"]) for c in cols],
       [("a", "INTEGER", False), ("b", "VARCHAR", True), ("c", "NUMERIC", True), ("d", "TIMESTAMP", True)],
       "columns of a table made by create_all")
    md.drop_all(engine)
    check(not sa.inspect(engine).has_table(t3.name, schema=schema), "drop_all")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--host", default=os.environ.get("PGHOST", "127.0.0.1"))
    ap.add_argument("--port", type=int, default=int(os.environ.get("PGPORT", "5433")))
    ap.add_argument("--dbname", default=os.environ.get("PGDATABASE", "default"))
    ap.add_argument("--user", default=os.environ.get("PGUSER", "tester"))
    ap.add_argument("--schema")
    args = ap.parse_args()
    schema = args.schema or ("default" if args.dbname == "default" else "public")
    url = sa.URL.create("postgresql+psycopg", username=args.user, host=args.host,
                        port=args.port, database=args.dbname)
    engine = sa.create_engine(url)
    suffix = uuid.uuid4().hex[:10]
    t, t2 = f"sa_cols_{suffix}", f"sa_defaults_{suffix}"
    failures = []
    tbl = None

    def setup():
        with engine.begin() as conn:
            ddl = ", ".join(f"{n} {d}" for n, d, _, _, _ in COLUMNS)
            conn.execute(sa.text(f"CREATE TABLE {t} ({ddl})"))
            conn.execute(sa.text(f"CREATE TABLE {t2} (n INT DEFAULT 7, s TEXT)"))

    def inspector():
        nonlocal tbl
        tbl = check_inspector(engine, schema, t, t2)

    def core():
        check(tbl is not None, "no reflected table (inspector step failed)")
        check_core(engine, tbl)

    steps = [
        ("create tables", setup),
        ("inspector", inspector),
        ("core select/insert/update/delete", core),
        ("MetaData.create_all/drop_all", lambda: check_metadata_create(engine, schema, suffix)),
    ]
    for step, fn in steps:
        try:
            fn()
        except (AssertionError, sa.exc.SQLAlchemyError) as e:
            msg = str(e).splitlines()[0] if isinstance(e, sa.exc.SQLAlchemyError) else str(e)
            if isinstance(e, sa.exc.DBAPIError):
                msg = f"{type(e.orig).__name__} (SQLSTATE {getattr(e.orig, 'sqlstate', None)}): {msg}"
            if not KEEP_GOING:
                sys.exit(f"FAIL sqlalchemy [{step}]: {msg}")
            failures.append(msg)
            print(f"FAIL sqlalchemy [{step}]: {msg}", file=sys.stderr)
    try:
        with engine.begin() as conn:
            for name in (t, t2):
                conn.execute(sa.text(f"DROP TABLE IF EXISTS {name}"))
    except sa.exc.SQLAlchemyError as e:
        failures.append(str(e))
        print(f"FAIL sqlalchemy [drop tables]: {str(e).splitlines()[0]}", file=sys.stderr)
    engine.dispose()
    if failures:
        sys.exit(f"FAIL sqlalchemy: {len(failures)} failed steps")
    print("sqlalchemy: all checks passed")


if __name__ == "__main__":
    main()
