"""Point-lookup latency while another session runs a CPU-heavy scan.

Starts the fusegate binary given (default target/release/fusegate) on a
temporary data directory, fills a many-block table and a one-block table,
and times a prepared lookup on the small table every 10 ms, first alone and
then while another connection aggregates the big table in a loop, once
with the server's defaults and once with --heavy-query-blocks so large that
every query runs on the connections' runtime. Prints p50/p99/max of each.
Used to check that heavy queries do not hold the threads small ones need
(src/query/background.rs); the TPC-H benchmark (scripts/bench) has the same
measurement against PostgreSQL.

    target/py/bin/python bench/lookup_under_load.py [--binary PATH] [--rows N]
"""

import argparse
import os
import re
import subprocess
import tempfile
import threading
import time

import psycopg


def start(binary, data_dir, flags):
    proc = subprocess.Popen(
        [binary, "--listen", "127.0.0.1:0", "--data-dir", data_dir, "--log", "info", *flags],
        stderr=subprocess.PIPE, text=True)
    for line in proc.stderr:
        m = re.search(r"fusegate ready listen=(\S+)", line)
        if m:
            threading.Thread(target=lambda: [None for _ in proc.stderr], daemon=True).start()
            host, port = m.group(1).rsplit(":", 1)
            return proc, f"host={host} port={port} user=bench dbname=default"
    raise SystemExit("fusegate did not start")


def stop(proc):
    proc.terminate()
    proc.wait()


def lookups(dsn, stop, keys=2000):
    lat = []
    with psycopg.connect(dsn, autocommit=True) as conn:
        i = 0
        while not stop() and i < keys:
            started = time.perf_counter()
            conn.execute("SELECT v FROM small WHERE k = %s", (i * 37 % 100_000,), prepare=True).fetchall()
            lat.append((time.perf_counter() - started) * 1000)
            i += 1
            time.sleep(0.01)
    lat.sort()
    return lat


def summary(lat):
    return f"{lat[len(lat) // 2]:8.2f} {lat[int(len(lat) * 0.99)]:8.2f} {lat[-1]:8.2f} {len(lat):6d}"


def measure(dsn, seconds):
    """Lookup latencies alone, then while another session aggregates `big`."""
    alone = lookups(dsn, lambda: False, keys=300)
    done = threading.Event()
    heavy_runs = [0]

    def heavy():
        with psycopg.connect(dsn, autocommit=True) as conn:
            while not done.is_set():
                conn.execute("SELECT k % 1000, sum(v), avg(v), count(DISTINCT v) FROM big GROUP BY 1").fetchall()
                heavy_runs[0] += 1

    t = threading.Thread(target=heavy)
    t.start()
    time.sleep(0.5)
    deadline = time.monotonic() + seconds
    loaded = lookups(dsn, lambda: time.monotonic() > deadline, keys=10_000)
    done.set()
    t.join()
    return alone, loaded, heavy_runs[0]


# The server's threshold (--heavy-query-blocks) in each configuration measured.
CONFIGS = [
    ("heavy queries on the background runtime (default)", []),
    ("every query on the connections' runtime", ["--heavy-query-blocks", str(2**62)]),
]


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--binary", default="target/release/fusegate")
    ap.add_argument("--rows", type=int, default=4_000_000, help="rows of the big table")
    ap.add_argument("--seconds", type=float, default=15, help="how long to measure under load")
    args = ap.parse_args()
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        proc, dsn = start(args.binary, tmp, [])
        try:
            with psycopg.connect(dsn, autocommit=True) as conn:
                conn.execute("CREATE TABLE small AS SELECT g AS k, g * 2 AS v FROM generate_series(0, 99999) AS g")
                conn.execute("CREATE TABLE big (k BIGINT, v BIGINT)")
                part = args.rows // 8
                for p in range(8):
                    conn.execute(f"INSERT INTO big SELECT g, g % 977 FROM generate_series({p * part}, {(p + 1) * part - 1}) AS g")
                blocks = conn.execute("SELECT count(*) FROM fuse_block('default', 'big')").fetchone()[0]
        finally:
            stop(proc)
        for name, flags in CONFIGS:
            proc, dsn = start(args.binary, tmp, flags)
            try:
                alone, loaded, runs = measure(dsn, args.seconds)
            finally:
                stop(proc)
            rows.append((name, alone, loaded, runs))
    print(f"binary: {args.binary}; big table: {args.rows} rows in {blocks} blocks; "
          f"{os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.2f}")
    print("| configuration | lookups | p50 ms | p99 ms | max ms | n | aggregates run |")
    print("|---|---|---:|---:|---:|---:|---:|")
    for name, alone, loaded, runs in rows:
        print(f"| {name} | alone | {' | '.join(summary(alone).split())} | |")
        print(f"| | during the aggregate | {' | '.join(summary(loaded).split())} | {runs} |")


if __name__ == "__main__":
    main()
