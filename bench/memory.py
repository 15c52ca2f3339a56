#!/usr/bin/env python3
"""fusegate's memory under load: the issue's memory targets, measured.

    target/py/bin/python bench/memory.py [--rows N] [--memory-limit 256MiB]

Starts a release fusegate (target/release/fusegate, built by scripts/bench)
on a fresh data directory with the given --memory-limit, fills a table with N
rows (default 10 M) through INSERT ... SELECT, then:

1. streams the whole table to a libpq client (psycopg, binary, server-side
   streaming: the client holds one row at a time) and reports rows/s and the
   server's peak RSS (VmHWM) before and after;
2. runs a sort and a grouping that need more than the memory limit, and a
   hash join whose build side cannot spill: each either answers (spilling)
   or fails with SQLSTATE 53200, and the server keeps serving.

Peak RSS is the kernel's VmHWM, reset (/proc/PID/clear_refs) before each
measurement, so each peak is that step's own.

Prints a Markdown table; the numbers go into docs/benchmarks.md.
"""

import argparse
import os
import re
import socket
import subprocess
import tempfile
import time
from pathlib import Path

import psycopg

ROOT = Path(__file__).resolve().parent.parent


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def status(pid, field):
    text = Path(f"/proc/{pid}/status").read_text()
    return int(re.search(rf"^{field}:\s+(\d+) kB", text, re.M).group(1)) / 1024


def reset_peak(pid):
    """Resets the kernel's peak RSS (VmHWM) of `pid` to its current RSS."""
    Path(f"/proc/{pid}/clear_refs").write_text("5")


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--rows", type=int, default=10_000_000)
    ap.add_argument("--memory-limit", default="256MiB")
    args = ap.parse_args()

    binary = ROOT / "target" / "release" / "fusegate"
    data = Path(tempfile.mkdtemp(prefix="fusegate-memory-"))
    port = free_port()
    server = subprocess.Popen(
        [str(binary), "--listen", f"127.0.0.1:{port}", "--data-dir", str(data),
         "--memory-limit", args.memory_limit, "--log", "warn"])
    dsn = f"host=127.0.0.1 port={port} user=bench dbname=default"
    try:
        for _ in range(100):
            try:
                psycopg.connect(dsn).close()
                break
            except psycopg.OperationalError:
                time.sleep(0.1)
        with psycopg.connect(dsn, autocommit=True) as conn:
            conn.execute("CREATE TABLE wide (id BIGINT, k INT, price DOUBLE PRECISION, note TEXT)")
            started = time.perf_counter()
            conn.execute(
                f"INSERT INTO wide SELECT g, g % 1000, g * 0.25, 'row number ' || g "
                f"FROM generate_series(1, {args.rows}) AS t(g)")
            fill = time.perf_counter() - started
        idle_rss = status(server.pid, "VmRSS")
        peak_before = status(server.pid, "VmHWM")
        reset_peak(server.pid)

        with psycopg.connect(dsn, autocommit=True) as conn:
            started = time.perf_counter()
            n = 0
            with conn.cursor(binary=True) as cur:
                for _ in cur.stream("SELECT * FROM wide"):
                    n += 1
            secs = time.perf_counter() - started
        assert n == args.rows, n
        peak_after = status(server.pid, "VmHWM")

        print(f"# fusegate memory, {args.rows:,} rows, --memory-limit {args.memory_limit}\n")
        print(f"{os.cpu_count()} cores; table filled in {fill:.1f} s by INSERT ... SELECT.\n")
        print("| measure | value |\n|---|---:|")
        print(f"| server RSS, idle after the fill | {idle_rss:.0f} MiB |")
        print(f"| peak RSS during the fill | {peak_before:.0f} MiB |")
        print(f"| streaming {n:,} rows (psycopg binary, row by row) | {n / secs:,.0f} rows/s |")
        print(f"| peak RSS while streaming | {peak_after:.0f} MiB |")

        print("\n| query needing more than the limit | outcome | seconds | peak RSS |\n|---|---|---:|---:|")
        for label, sql in [
            ("sort of every row", f"SELECT id FROM wide ORDER BY note DESC, id OFFSET {args.rows - 1}"),
            ("grouping by id (one group per row)",
             "SELECT count(*) FROM (SELECT id, count(*) FROM wide GROUP BY id) t"),
            ("hash join of the table with itself", "SELECT count(*) FROM wide a JOIN wide b ON a.id = b.id"),
        ]:
            reset_peak(server.pid)
            started = time.perf_counter()
            try:
                with psycopg.connect(dsn, autocommit=True) as conn:
                    row = conn.execute(sql).fetchone()
                outcome = f"answered ({row[0]})"
            except psycopg.Error as e:
                outcome = f"{e.sqlstate}: {str(e).splitlines()[0][:60]}"
            secs = time.perf_counter() - started
            print(f"| {label} | {outcome} | {secs:.1f} | {status(server.pid, 'VmHWM'):.0f} MiB |")
        with psycopg.connect(dsn, autocommit=True) as conn:
            alive = conn.execute("SELECT count(*) FROM wide WHERE id <= 10").fetchone()[0]
        print(f"\nAfterwards the server still answers (`SELECT count(*) ... WHERE id <= 10` = {alive}).")
    finally:
        server.terminate()
        server.wait(timeout=30)
        subprocess.run(["rm", "-rf", str(data)], check=False)


if __name__ == "__main__":
    main()
