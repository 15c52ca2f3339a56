#!/usr/bin/env python3
"""fusegate against PostgreSQL and DuckDB on TPC-H, side by side, in one run.

    scripts/bench [--sf 1] [--runs 3] [--skip-postgres]

(scripts/bench builds fusegate in release mode, installs tpchgen-cli,
DuckDB and DataFusion, then runs this.) Prints Markdown tables: absolute
numbers and ratios to the peers. Every system runs on this machine, on loopback:

- fusegate: the release binary, a fresh data directory, loaded with COPY FROM
  STDIN through the wire;
- PostgreSQL: Debian's package, a throwaway cluster, loaded with COPY FROM
  STDIN, then the indexes of postgres_indexes.sql and ANALYZE;
- DuckDB: in-process, over the same data as Parquet (the single-machine
  speed reference);
- DataFusion: the engine fusegate runs on (PyPI `datafusion`, the same major
  version), in-process over the same Parquet files with its defaults, for the
  TPC-H queries only: what is left between fusegate and it is fusegate's own
  cost (the fuse format, the wire, its settings), the rest DataFusion's.
"""

import argparse
import concurrent.futures as futures
import datetime as dt
import os
import pathlib
import random
import re
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from decimal import Decimal

import datafusion
import duckdb
import psycopg

ROOT = pathlib.Path(__file__).resolve().parent.parent
TPCH = ROOT / "bench" / "tpch"
TABLES = ["region", "nation", "part", "supplier", "partsupp", "customer", "orders", "lineitem"]


def log(msg):
    print(f"[{dt.datetime.now():%H:%M:%S}] {msg}", file=sys.stderr, flush=True)


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def load_average():
    return " ".join(open("/proc/loadavg").read().split()[:3])


# --- data -----------------------------------------------------------------

def generate(sf, out):
    tool = ROOT / "target" / "tools" / "bin" / "tpchgen-cli"
    for fmt in ("csv", "parquet"):
        d = out / fmt
        if (d / ".generated").exists():
            continue
        shutil.rmtree(d, ignore_errors=True)
        d.mkdir(parents=True)
        log(f"generating TPC-H SF {sf} as {fmt}")
        subprocess.run([str(tool), fmt, "-s", str(sf), "--output-dir", str(d)], check=True)
        (d / ".generated").touch()
    return out / "csv", out / "parquet"


def copy_in(conn, csv_dir):
    """COPY every table FROM STDIN; seconds and rows per table."""
    times = {}
    with conn.cursor() as cur:
        for table in TABLES:
            path = csv_dir / f"{table}.csv"
            started = time.perf_counter()
            with open(path, "rb") as f, cur.copy(f"COPY {table} FROM STDIN (FORMAT csv, HEADER)") as copy:
                while chunk := f.read(1 << 20):
                    copy.write(chunk)
            rows = cur.rowcount
            times[table] = (time.perf_counter() - started, rows)
    return times


# --- servers --------------------------------------------------------------

class Fusegate:
    name = "fusegate"

    def __init__(self, work):
        self.port = free_port()
        data = work / "fusegate-data"
        shutil.rmtree(data, ignore_errors=True)
        self.log = open(work / "fusegate.log", "w")
        self.proc = subprocess.Popen(
            [str(ROOT / "target" / "release" / "fusegate"), "--listen", f"127.0.0.1:{self.port}",
             "--data-dir", str(data), "--log", "warn"],
            stdout=self.log, stderr=subprocess.STDOUT)
        self.dsn = f"host=127.0.0.1 port={self.port} dbname=default user=bench"
        wait_for(self.dsn)

    def rss_peak_mib(self):
        for line in open(f"/proc/{self.proc.pid}/status"):
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
        return float("nan")

    def stop(self):
        self.proc.terminate()
        self.proc.wait(30)


class Postgres:
    name = "PostgreSQL"

    def __init__(self, work):
        bins = sorted(pathlib.Path("/usr/lib/postgresql").glob("*/bin/initdb"))
        if not bins:
            sys.exit("PostgreSQL is missing (Debian: apt-get install postgresql)")
        self.bin = bins[-1].parent
        self.version = self.bin.parent.name
        self.dir = pathlib.Path(tempfile.mkdtemp(prefix="fgbench-pg-", dir=work))
        self.as_postgres = os.geteuid() == 0
        if self.as_postgres:
            subprocess.run(["chown", "-R", "postgres:postgres", str(self.dir)], check=True)
        self.port = free_port()
        self.run("initdb", "-D", str(self.dir / "data"), "-U", "postgres", "--auth=trust", "--no-sync",
                 "-E", "UTF8", "--locale=C")
        opts = (f"-p {self.port} -k {self.dir} -c listen_addresses=127.0.0.1 -c shared_buffers=2GB "
                "-c work_mem=256MB -c maintenance_work_mem=1GB -c max_wal_size=8GB "
                "-c effective_cache_size=8GB -c timezone=UTC")
        self.run("pg_ctl", "-D", str(self.dir / "data"), "-w", "-o", opts, "-l", str(self.dir / "log"), "start")
        self.dsn = f"host=127.0.0.1 port={self.port} dbname=postgres user=postgres"
        wait_for(self.dsn)

    def run(self, program, *args):
        cmd = [str(self.bin / program), *args]
        if self.as_postgres:
            cmd = ["runuser", "-u", "postgres", "--", *cmd]
        subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL)

    def stop(self):
        self.run("pg_ctl", "-D", str(self.dir / "data"), "-m", "fast", "stop")
        shutil.rmtree(self.dir, ignore_errors=True)


def wait_for(dsn):
    for _ in range(100):
        try:
            psycopg.connect(dsn, connect_timeout=2).close()
            return
        except psycopg.OperationalError:
            time.sleep(0.1)
    sys.exit(f"server at {dsn} did not start")


# --- workloads ------------------------------------------------------------

def queries():
    return [(int(p.stem[1:]), p.read_text()) for p in sorted((TPCH / "queries").glob("q*.sql"))]


def normalise(rows):
    def value(v):
        if isinstance(v, (Decimal, float, int)) and not isinstance(v, bool):
            return f"{float(v):.2f}"
        return str(v)
    return sorted(tuple(value(v) for v in row) for row in rows)


def timed_runs(fn, runs):
    """A warm-up, then `runs` timed runs: (median seconds, last result)."""
    result = fn()
    times = []
    for _ in range(runs):
        started = time.perf_counter()
        result = fn()
        times.append(time.perf_counter() - started)
    return statistics.median(times), result


def in_process(parquet_dir):
    """The in-process engines, each a function from SQL to rows, over the
    Parquet files: DuckDB first (the reference for answers and ratios)."""
    duck = duckdb.connect()
    fusion = datafusion.SessionContext()
    for t in TABLES:
        path = parquet_dir / (t + ".parquet")
        duck.execute(f"CREATE VIEW {t} AS SELECT * FROM read_parquet('{path}')")
        fusion.register_parquet(t, str(path))

    def fusion_rows(sql):
        return [tuple(r.values()) for r in fusion.sql(sql).to_arrow_table().to_pylist()]

    return {"DuckDB": lambda sql: duck.execute(sql).fetchall(), "DataFusion": fusion_rows}


def tpch(systems, engines, runs):
    out = {}
    for n, sql in queries():
        row = {}
        answers = {}
        for s in systems:
            with psycopg.connect(s.dsn, autocommit=True) as conn:
                try:
                    secs, rows = timed_runs(lambda: conn.execute(sql).fetchall(), runs)
                    row[s.name] = secs
                    answers[s.name] = normalise(rows)
                except psycopg.Error as e:
                    row[s.name] = None
                    answers[s.name] = f"error {e.sqlstate}: {str(e).splitlines()[0]}"
        for name, run in engines.items():
            try:
                secs, rows = timed_runs(lambda: run(sql), runs)
                row[name] = secs
                answers[name] = normalise(rows)
            except Exception as e:  # an engine that cannot run a query is reported, not fatal
                row[name] = None
                answers[name] = f"error: {str(e).splitlines()[0]}"
        reference = answers["DuckDB"]
        row["answers"] = "same" if all(a == reference for a in answers.values()) else \
            "DIFFER: " + ", ".join(k for k, a in answers.items() if a != reference)
        out[n] = row
        log(f"Q{n:02d} " + " ".join(f"{k}={v:.3f}s" if isinstance(v, float) else f"{k}={v}"
                                   for k, v in row.items()))
    return out


def range_query(systems, runs=200):
    """The median of `runs` executions after a warm-up: one takes about a
    millisecond, so a few would measure the machine's noise."""
    lo = 1_000_000
    sql = f"SELECT count(*), sum(l_extendedprice) FROM lineitem WHERE l_orderkey BETWEEN {lo} AND {lo + 2000}"
    out = {}
    for s in systems:
        with psycopg.connect(s.dsn, autocommit=True) as conn:
            secs, _ = timed_runs(lambda: conn.execute(sql).fetchall(), runs)
            out[s.name] = secs
            if s.name == "fusegate":
                plan = conn.execute("EXPLAIN " + sql).fetchall()
                out["pruning"] = next((text for kind, text in plan if kind == "fuse_pruning"), "?")
    return sql, out


def point_lookups(systems, n=1000):
    sql = "SELECT o_orderkey, o_totalprice, o_orderstatus FROM orders WHERE o_orderkey = %s"
    out = {}
    for s in systems:
        with psycopg.connect(s.dsn, autocommit=True) as conn:
            keys = [k for (k,) in conn.execute("SELECT o_orderkey FROM orders LIMIT 50000").fetchall()]
            random.seed(7)
            picks = [random.choice(keys) for _ in range(n)]
            conn.execute(sql, (picks[0],), prepare=True).fetchall()  # Parse once
            lat = []
            for k in picks:
                started = time.perf_counter()
                rows = conn.execute(sql, (k,), prepare=True).fetchall()
                lat.append((time.perf_counter() - started) * 1000)
                assert len(rows) == 1, (s.name, k, rows)
            lat.sort()
            out[s.name] = (lat[len(lat) // 2], lat[int(len(lat) * 0.99)])
    return out


def streaming(systems, rows):
    sql = f"SELECT * FROM lineitem LIMIT {rows}"
    out = {}
    for s in systems:
        host, port, db, user = (dict(kv.split("=") for kv in s.dsn.split())[k]
                                for k in ("host", "port", "dbname", "user"))
        started = time.perf_counter()
        subprocess.run(["psql", "-X", "-q", "-A", "-t", "-h", host, "-p", port, "-U", user, "-d", db,
                        "-c", sql, "-o", "/dev/null"], check=True)
        text = time.perf_counter() - started
        with psycopg.connect(s.dsn, autocommit=True) as conn:
            started = time.perf_counter()
            with conn.cursor(binary=True) as cur:
                got = len(cur.execute(sql).fetchall())
            binary = time.perf_counter() - started
        assert got == rows, (s.name, got)
        out[s.name] = (rows / text, rows / binary)
        if isinstance(s, Fusegate):
            out["fusegate_rss"] = s.rss_peak_mib()
    return sql, out


MIX = [
    "SELECT sum(l_extendedprice * l_discount) FROM lineitem WHERE l_shipdate >= date '1994-01-01' "
    "AND l_shipdate < date '1995-01-01' AND l_discount BETWEEN 0.05 AND 0.07 AND l_quantity < 24",
    "SELECT o_orderpriority, count(*) FROM orders WHERE o_orderdate >= date '1993-07-01' "
    "AND o_orderdate < date '1993-10-01' GROUP BY o_orderpriority",
    "SELECT c_name, c_acctbal FROM customer WHERE c_custkey = 4242",
    "SELECT o_totalprice FROM orders WHERE o_orderkey = 1000000",
]


def concurrency(systems, clients=16, seconds=20):
    out = {}
    for s in systems:
        stop = time.monotonic() + seconds
        done = [0] * clients

        def worker(i):
            with psycopg.connect(s.dsn, autocommit=True) as conn:
                j = i
                while time.monotonic() < stop:
                    conn.execute(MIX[j % len(MIX)]).fetchall()
                    done[i] += 1
                    j += 1

        with futures.ThreadPoolExecutor(clients) as pool:
            list(pool.map(worker, range(clients)))
        out[s.name] = sum(done) / seconds
    return out


def lookup_during_q1(systems, q1):
    out = {}
    for s in systems:
        busy = threading.Event()
        finished = threading.Event()

        def heavy():
            with psycopg.connect(s.dsn, autocommit=True) as conn:
                busy.set()
                conn.execute(q1).fetchall()
                conn.execute(q1).fetchall()
            finished.set()

        t = threading.Thread(target=heavy)
        t.start()
        busy.wait()
        lat = []
        with psycopg.connect(s.dsn, autocommit=True) as conn:
            while not finished.is_set():
                started = time.perf_counter()
                conn.execute("SELECT o_totalprice FROM orders WHERE o_orderkey = %s", (1000000,),
                             prepare=True).fetchall()
                lat.append((time.perf_counter() - started) * 1000)
                time.sleep(0.01)
        t.join()
        lat.sort()
        out[s.name] = (lat[len(lat) // 2], lat[int(len(lat) * 0.99)], lat[-1], len(lat))
    return out


# --- report ---------------------------------------------------------------

def fmt(v, digits=3):
    return "error" if v is None else f"{v:.{digits}f}"


# Measurements after the load, in the order they run.
WORKLOADS = ("queries", "range", "lookup", "streaming", "concurrency", "under-load")


def ratio(a, b):
    return "—" if a is None or b is None or b == 0 else f"{a / b:.2f}×"


def ratios(row):
    """fusegate/DuckDB, fusegate/DataFusion, DataFusion/DuckDB, fusegate/PostgreSQL."""
    return " | ".join(ratio(row.get(a), row.get(b)) for a, b in (
        ("fusegate", "DuckDB"), ("fusegate", "DataFusion"), ("DataFusion", "DuckDB"), ("fusegate", "PostgreSQL")))


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sf", default="1", help="TPC-H scale factor (default 1)")
    ap.add_argument("--runs", type=int, default=3, help="timed runs per query, after a warm-up (median)")
    ap.add_argument("--skip-postgres", action="store_true", help="compare with DuckDB only")
    ap.add_argument("--stream-rows", type=int, default=1_000_000)
    ap.add_argument("--compression", choices=["zstd", "lz4", "snappy", "none"],
                    help="create fusegate's tables with this compression option (default: the table default, zstd)")
    ap.add_argument("--workloads", default=",".join(WORKLOADS),
                    help="which measurements to run after the load, comma-separated (default: all of "
                         + ", ".join(WORKLOADS) + ")")
    args = ap.parse_args()
    wanted = set(args.workloads.split(",")) if args.workloads else set()
    if wanted - set(WORKLOADS):
        ap.error(f"unknown workloads: {', '.join(sorted(wanted - set(WORKLOADS)))}")

    work = ROOT / "target" / "bench"
    work.mkdir(parents=True, exist_ok=True)
    csv_dir, parquet_dir = generate(args.sf, work / f"tpch-sf{args.sf}")
    print(f"# fusegate benchmark — TPC-H SF {args.sf}\n")
    if args.compression:
        print(f"fusegate's tables: COMPRESSION = '{args.compression}'.\n")
    print(f"{dt.datetime.now(dt.timezone.utc):%Y-%m-%d %H:%M} UTC, {os.cpu_count()} cores, "
          f"load average before: {load_average()}; median of {args.runs} runs after a warm-up.\n")

    engines = in_process(parquet_dir)
    systems = []
    try:
        systems.append(Fusegate(work))
        if not args.skip_postgres:
            systems.append(Postgres(work))
        schema = (TPCH / "schema.sql").read_text()
        loads = {}
        for s in systems:
            with psycopg.connect(s.dsn, autocommit=True) as conn:
                if isinstance(s, Fusegate) and args.compression:
                    # Each CREATE TABLE ends with ");" at the end of its line.
                    conn.execute(re.sub(r"\);$", f") COMPRESSION = '{args.compression}';", schema, flags=re.M))
                else:
                    conn.execute(schema)
                log(f"loading {s.name}")
                loads[s.name] = copy_in(conn, csv_dir)
                if isinstance(s, Postgres):
                    started = time.perf_counter()
                    conn.execute((TPCH / "postgres_indexes.sql").read_text())
                    loads["PostgreSQL indexes"] = time.perf_counter() - started
        total_rows = sum(r for _, r in loads["fusegate"].values())
        print("## Load (COPY FROM STDIN through the wire)\n")
        print("| system | seconds | rows/s | vs fusegate |\n|---|---:|---:|---:|")
        fg_load = sum(t for t, _ in loads["fusegate"].values())
        for s in systems:
            secs = sum(t for t, _ in loads[s.name].values())
            print(f"| {s.name} | {secs:.1f} | {total_rows / secs:,.0f} | {ratio(secs, fg_load)} |")
        if "PostgreSQL indexes" in loads:
            print(f"\nPostgreSQL then spent {loads['PostgreSQL indexes']:.1f} s creating its indexes and analyzing.")

        if "queries" in wanted:
            log("TPC-H queries")
            results = tpch(systems, engines, args.runs)
            names = [s.name for s in systems] + list(engines)
            print("\n## TPC-H queries (seconds)\n")
            print("| query | " + " | ".join(names) +
                  " | fusegate/DuckDB | fusegate/DataFusion | DataFusion/DuckDB | fusegate/PostgreSQL | answers |")
            print("|---|" + "---:|" * (len(names) + 4) + "---|")
            totals = {k: 0.0 for k in names}
            for n, row in results.items():
                for k in names:
                    totals[k] += row[k] or 0.0
                print(f"| Q{n:02d} | " + " | ".join(fmt(row[k]) for k in names) +
                      f" | {ratios(row)} | {row['answers']} |")
            print("| total | " + " | ".join(fmt(totals[k]) for k in names) + f" | {ratios(totals)} | |")

        if "range" in wanted:
            log("range query")
            sql, rq = range_query(systems)
            print(f"\n## Selective range on the sorted key, median of 200 executions\n\n`{sql}`\n")
            print("| system | ms |\n|---|---:|")
            for s in systems:
                print(f"| {s.name} | {rq[s.name] * 1000:.1f} |")
            print(f"\nfusegate's EXPLAIN: `{rq['pruning']}`")

        if "lookup" in wanted:
            log("point lookups")
            pl = point_lookups(systems)
            print("\n## Prepared point lookup, 1,000 executions (extended protocol)\n")
            print("| system | p50 ms | p99 ms |\n|---|---:|---:|")
            for s in systems:
                print(f"| {s.name} | {pl[s.name][0]:.3f} | {pl[s.name][1]:.3f} |")

        if "streaming" in wanted:
            log("streaming")
            sql, st = streaming(systems, args.stream_rows)
            print(f"\n## Streaming to a libpq client\n\n`{sql}`: psql (libpq, text) and psycopg (libpq, binary)\n")
            print("| system | text rows/s | binary rows/s |\n|---|---:|---:|")
            for s in systems:
                print(f"| {s.name} | {st[s.name][0]:,.0f} | {st[s.name][1]:,.0f} |")
            print(f"\nfusegate's peak RSS so far: {st['fusegate_rss']:.0f} MiB")

        if "concurrency" in wanted:
            log("concurrency")
            cc = concurrency(systems)
            print("\n## 16 concurrent clients, query mix, 20 s\n")
            print("| system | queries/s |\n|---|---:|")
            for s in systems:
                print(f"| {s.name} | {cc[s.name]:.1f} |")

        if "under-load" in wanted:
            log("lookup during Q1")
            q1 = (TPCH / "queries" / "q01.sql").read_text()
            lq = lookup_during_q1(systems, q1)
            print("\n## Point lookup while another connection runs Q1\n")
            print("| system | p50 ms | p99 ms | max ms | lookups |\n|---|---:|---:|---:|---:|")
            for s in systems:
                p50, p99, mx, n = lq[s.name]
                print(f"| {s.name} | {p50:.2f} | {p99:.2f} | {mx:.2f} | {n} |")
        print(f"\nLoad average after: {load_average()}")
    finally:
        for s in systems:
            s.stop()


if __name__ == "__main__":
    main()
