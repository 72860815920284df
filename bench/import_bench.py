"""CSV import benchmark: our import end to end beside a bare COPY of the same file.

    .venv/bin/python bench/import_bench.py                      # PostgreSQL and SQLite, 500k rows, 3 runs
    .venv/bin/python bench/import_bench.py --backend postgres --runs 3 --scale-rows 2000000

Per backend and run, in a fresh database migrated with the app's migrations:
  baseline   COPY of the file into an unindexed table (SQLite: one executemany of csv rows)
  empty      our import (stored file -> completed) into an empty catalogue
  same       the same file again: every row unchanged, nothing rewritten
  changed    a file with the same SKUs and new names/descriptions: every product updates
Each import runs in a child process, which reports its wall time and peak RSS, and then, off
the import's clock, how long adding the imported rows to the search indexes takes (the
worker's next task on PostgreSQL; see importer/search_index.py). Medians over
the runs, and each import's ratio to the baseline, are printed; `--scale-rows` adds one
import of a bigger file into an empty catalogue, reported against the 500k median.
Files come from bench/datagen.py (seeded) and are kept in bench/out/.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / "bench" / "out"
sys.path.insert(0, str(ROOT))

PG_ADMIN = "postgresql://postgres@127.0.0.1:5432/postgres"
PG_BENCH_DB = "importer_bench_import"
CASES = ("empty", "same", "changed")


def _file(rows: int, variant: int = 0) -> Path:
    from bench.datagen import write_products_csv

    path = OUT / f"import-bench-{rows}-v{variant}.csv"
    if not path.exists():
        print(f"generating {path.name} ...", flush=True)
        write_products_csv(path, rows, seed=1, variant=variant)
    return path


def _pg(sql: str, database: str = "postgres") -> None:
    import psycopg2

    connection = psycopg2.connect(host="127.0.0.1", user="postgres", dbname=database)
    connection.autocommit = True
    with connection.cursor() as cursor:
        cursor.execute(sql)
    connection.close()


def _environment(backend: str, data_dir: Path) -> dict[str, str]:
    env = {key: value for key, value in os.environ.items() if key not in ("DATABASE_URL", "REDIS_URL")}
    env.update(DATA_DIR=str(data_dir), SECRET_KEY="import-bench")
    if backend == "postgres":
        env["DATABASE_URL"] = f"postgresql://postgres@127.0.0.1:5432/{PG_BENCH_DB}"
    return env


def _fresh_database(backend: str, data_dir: Path) -> dict[str, str]:
    shutil.rmtree(data_dir, ignore_errors=True)
    data_dir.mkdir(parents=True)
    if backend == "postgres":
        _pg(f'DROP DATABASE IF EXISTS "{PG_BENCH_DB}" WITH (FORCE)')
        _pg(f'CREATE DATABASE "{PG_BENCH_DB}"')
    env = _environment(backend, data_dir)
    subprocess.run([sys.executable, "main.py", "migrate"], cwd=ROOT, env=env, check=True, capture_output=True)
    return env


def _baseline(backend: str, path: Path, data_dir: Path) -> float:
    if backend == "postgres":
        import psycopg2

        connection = psycopg2.connect(host="127.0.0.1", user="postgres", dbname=PG_BENCH_DB)
        with connection.cursor() as cursor, path.open("rb") as handle:
            cursor.execute("CREATE TABLE bench_baseline (name text, sku text, description text)")
            connection.commit()
            started = time.perf_counter()
            cursor.copy_expert("COPY bench_baseline FROM STDIN WITH (FORMAT csv, HEADER true)", handle)
            connection.commit()
            elapsed = time.perf_counter() - started
            cursor.execute("DROP TABLE bench_baseline")
        connection.commit()
        connection.close()
        return elapsed
    import csv
    import sqlite3

    connection = sqlite3.connect(data_dir / "importer.db")
    connection.execute("CREATE TABLE bench_baseline (name TEXT, sku TEXT, description TEXT)")
    started = time.perf_counter()
    with path.open(encoding="utf-8", newline="") as handle:
        rows = csv.reader(handle)
        next(rows)
        connection.executemany("INSERT INTO bench_baseline VALUES (?, ?, ?)", rows)
    connection.commit()
    elapsed = time.perf_counter() - started
    connection.execute("DROP TABLE bench_baseline")
    connection.commit()
    connection.close()
    return elapsed


def _child_import(path: str) -> None:
    """Runs in a child process: store the file as an upload, then time run_import to `completed`."""
    from importer import jobs
    from importer.db import session_scope

    with session_scope() as session:
        upload = jobs.import_local_file(session, Path(path), user_id=None)
    started = time.perf_counter()
    jobs.run_import(upload.id)  # type: ignore[arg-type]
    elapsed = time.perf_counter() - started
    from importer import search_index

    started = time.perf_counter()
    search_index.index_pending()  # what the worker does next, off the import's clock (PostgreSQL only)
    indexing = time.perf_counter() - started
    with session_scope() as session:
        upload = jobs.get_upload(session, upload.id)  # type: ignore[arg-type]
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(json.dumps({"seconds": elapsed, "indexing_seconds": indexing, "peak_rss_mb": peak_mb, "status": upload.status, "created": upload.created,
                      "updated": upload.updated, "unchanged": upload.unchanged, "rows": upload.processed_rows}))


def _import(env: dict[str, str], path: Path) -> dict[str, float]:
    result = subprocess.run([sys.executable, __file__, "--child-import", str(path)], cwd=ROOT, env=env,
                            check=True, capture_output=True, text=True)
    report = json.loads(result.stdout.strip().splitlines()[-1])
    if report["status"] != "completed":
        raise SystemExit(f"import of {path.name} ended {report['status']}: {result.stderr[-2000:]}")
    return report


def _run_backend(backend: str, rows: int, runs: int, scale_rows: int) -> None:
    base, changed = _file(rows), _file(rows, variant=1)
    data_dir = Path(tempfile.gettempdir()) / f"import-bench-{backend}"
    baselines: list[float] = []
    times: dict[str, list[float]] = {case: [] for case in CASES}
    indexing: dict[str, list[float]] = {case: [] for case in CASES}
    peaks: list[float] = []
    for run in range(1, runs + 1):
        env = _fresh_database(backend, data_dir)
        baselines.append(_baseline(backend, base, data_dir))
        for case, path in zip(CASES, (base, base, changed)):
            report = _import(env, path)
            times[case].append(report["seconds"])
            indexing[case].append(report["indexing_seconds"])
            peaks.append(report["peak_rss_mb"])
            print(f"  run {run} {case:8s} {report['seconds']:7.2f}s  created={report['created']} "
                  f"updated={report['updated']} unchanged={report['unchanged']} peak={report['peak_rss_mb']:.0f} MB "
                  f"then search index {report['indexing_seconds']:.2f}s", flush=True)
        print(f"  run {run} baseline {baselines[-1]:7.2f}s", flush=True)
    baseline = statistics.median(baselines)
    print(f"\n{backend}: {rows:,} rows, {base.stat().st_size / 1e6:.0f} MB, median of {runs} runs")
    print(f"  baseline (bare COPY)            {baseline:7.2f}s")
    for case in CASES:
        median = statistics.median(times[case])
        print(f"  import into {case:8s} catalogue  {median:7.2f}s   {median / baseline:5.2f}x baseline   "
              f"then search index {statistics.median(indexing[case]):6.2f}s (in the background)")
    print(f"  peak RSS of the importer        {max(peaks):7.0f} MB")
    if scale_rows:
        env = _fresh_database(backend, data_dir)
        report = _import(env, _file(scale_rows))
        empty = statistics.median(times["empty"])
        print(f"  {scale_rows:,} rows into empty     {report['seconds']:7.2f}s   {report['seconds'] / empty:5.2f}x "
              f"the {rows:,}-row time (peak {report['peak_rss_mb']:.0f} MB; then search index "
              f"{report['indexing_seconds']:.2f}s)")
    shutil.rmtree(data_dir, ignore_errors=True)


def main() -> None:
    parser = argparse.ArgumentParser(description="CSV import benchmark")
    parser.add_argument("--backend", choices=("postgres", "sqlite", "both"), default="both")
    parser.add_argument("--rows", type=int, default=500_000)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--scale-rows", type=int, default=0, help="also import a file this big (e.g. 2000000)")
    parser.add_argument("--child-import", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child_import:
        _child_import(args.child_import)
        return
    for backend in ("postgres", "sqlite") if args.backend == "both" else (args.backend,):
        print(f"== {backend}", flush=True)
        _run_backend(backend, args.rows, args.runs, args.scale_rows)


if __name__ == "__main__":
    main()
