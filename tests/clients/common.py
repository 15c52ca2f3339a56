"""What the client scripts share: the table of every supported type, and
the checks (a failed check raises AssertionError with what was expected)."""

import os

# CLIENTS_KEEP_GOING=1: report every failed step, not only the first.
KEEP_GOING = os.environ.get("CLIENTS_KEEP_GOING") == "1"

# (column, SQL type, PostgreSQL's type name from pg_type)
COLUMNS = [
    ("c_small", "SMALLINT", "int2"),
    ("c_int", "INT", "int4"),
    ("c_big", "BIGINT", "int8"),
    ("c_real", "REAL", "float4"),
    ("c_double", "DOUBLE PRECISION", "float8"),
    ("c_num", "NUMERIC(12,3)", "numeric"),
    ("c_varchar", "VARCHAR(20)", "varchar"),
    ("c_text", "TEXT", "text"),
    ("c_bool", "BOOLEAN", "bool"),
    ("c_date", "DATE", "date"),
    ("c_ts", "TIMESTAMP", "timestamp"),
]
NAMES = ", ".join(n for n, _, _ in COLUMNS)


def check(cond, msg):
    if not cond:
        raise AssertionError(msg)


def eq(got, want, what):
    check(got == want, f"{what}: got {got!r}, want {want!r}")
