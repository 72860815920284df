"""Catalogue latency at scale: list, page, filter and search over a million products (PostgreSQL).

Loads a seeded catalogue into a dedicated database (never a test database), migrated with
the app's own migrations, then reports median latencies through the real REST API (TestClient)
and the raw service call, each beside a baseline measured in the same run:

    .venv/bin/python bench/catalogue_bench.py               # 1,000,000 products in importer_bench
    .venv/bin/python bench/catalogue_bench.py --rows 200000 --runs 9 --reload

A catalogue of the asked size and seed is reused between runs; `--reload` rebuilds it.
`--pending 500000` measures the window right after a large import, while its rows are not
yet in the search indexes, then lets the indexer catch up and reports how long it took.
Counts are measured cold (count cache emptied before every run) and warm (page views in a row).
"""

from __future__ import annotations

import argparse
import io
import json
import os
import random
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any, Optional

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

SEED_TABLE = "bench_catalogue_seed"
COPY_BATCH_ROWS = 50_000
INACTIVE_SHARE = 0.1
LOADED_AT = datetime(2026, 1, 1, tzinfo=timezone.utc)


def _configure(database_url: str) -> None:
    """Before any app module loads: the settings are read once, from the environment."""
    os.environ["DATABASE_URL"] = database_url
    os.environ.pop("REDIS_URL", None)
    os.environ.setdefault("SECRET_KEY", "catalogue-bench")
    os.environ["DATA_DIR"] = tempfile.mkdtemp(prefix="catalogue-bench-")


def _ensure_database(database_url: str) -> None:
    import psycopg2
    from sqlalchemy.engine import make_url

    url = make_url(database_url)
    connection = psycopg2.connect(host=url.host, port=url.port, user=url.username, password=url.password,
                                  dbname="postgres")
    connection.autocommit = True
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1 FROM pg_database WHERE datname = %s", (url.database,))
        if cursor.fetchone() is None:
            cursor.execute(f'CREATE DATABASE "{url.database}"')
    connection.close()


# --- loading ----------------------------------------------------------------------------


class _CopySource(io.TextIOBase):
    """A file-like view of generated rows in COPY text format, read by psycopg2 a block at a time."""

    def __init__(self, lines: Iterator[str]) -> None:
        self._lines = lines
        self._pending = ""

    def readable(self) -> bool:
        return True

    def read(self, size: int = -1) -> str:
        while size < 0 or len(self._pending) < size:
            chunk = "".join(line for _, line in zip(range(1000), self._lines))
            if not chunk:
                break
            self._pending += chunk
        if size < 0:
            size = len(self._pending)
        result, self._pending = self._pending[:size], self._pending[size:]
        return result

    readline = read


def _copy_text(value: str) -> str:
    return value.replace("\\", "\\\\").replace("\t", "\\t").replace("\n", "\\n").replace("\r", "\\r")


def _copy_lines(rows: int, seed: int) -> Iterator[str]:
    """Unique SKUs; one product in ten inactive; each one updated a second before the next."""
    from datagen import product_rows

    active_rng = random.Random(f"{seed}:active")
    for index, (name, sku, description) in enumerate(product_rows(rows, seed, duplicate_ratio=0.0)):
        active = "f" if active_rng.random() < INACTIVE_SHARE else "t"
        updated = (LOADED_AT + timedelta(seconds=index)).isoformat()
        yield "\t".join((_copy_text(sku), _copy_text(sku.casefold()), _copy_text(name), _copy_text(description),
                         active, LOADED_AT.isoformat(), updated)) + "\n"


def _loaded_seed(connection: Any) -> Optional[dict]:  # type: ignore[type-arg]
    with connection.cursor() as cursor:
        cursor.execute("SELECT to_regclass(%s)", (SEED_TABLE,))
        if cursor.fetchone()[0] is None:
            return None
        cursor.execute(f"SELECT rows, seed FROM {SEED_TABLE}")
        row = cursor.fetchone()
        return {"rows": row[0], "seed": row[1]} if row else None


def load_catalogue(rows: int, seed: int, reload: bool) -> None:
    """COPY the seeded rows with the secondary indexes dropped, then rebuild them exactly as migrated."""
    from importer.db import get_engine

    raw = get_engine().raw_connection()
    try:
        if not reload and _loaded_seed(raw) == {"rows": rows, "seed": seed}:
            print(f"reusing the loaded catalogue ({rows:,} products, seed {seed})")
            return
        started = time.perf_counter()
        with raw.cursor() as cursor:
            cursor.execute("SET maintenance_work_mem = '1GB'")
            cursor.execute("SELECT indexname, indexdef FROM pg_indexes WHERE tablename = 'products' "
                           "AND indexname <> 'products_pkey'")
            indexes = cursor.fetchall()
            for name, _ in indexes:
                cursor.execute(f'DROP INDEX "{name}"')
            cursor.execute(f"DROP TABLE IF EXISTS {SEED_TABLE}")
            cursor.execute("TRUNCATE products RESTART IDENTITY CASCADE")
            cursor.copy_expert(
                "COPY products (sku, sku_key, name, description, is_active, created_at, updated_at) FROM STDIN",
                _CopySource(_copy_lines(rows, seed)),
            )
            copied = time.perf_counter()
            for _, definition in indexes:
                cursor.execute(definition)
            cursor.execute(f"CREATE TABLE {SEED_TABLE} (rows integer, seed integer)")
            cursor.execute(f"INSERT INTO {SEED_TABLE} VALUES (%s, %s)", (rows, seed))
        raw.commit()
        raw.driver_connection.autocommit = True
        with raw.cursor() as cursor:
            cursor.execute("VACUUM ANALYZE products")
        raw.driver_connection.autocommit = False
        print(f"loaded {rows:,} products: COPY {copied - started:.1f} s, indexes and analyze "
              f"{time.perf_counter() - copied:.1f} s")
    finally:
        raw.close()


# --- measuring --------------------------------------------------------------------------


@dataclass(frozen=True)
class Case:
    label: str
    query: dict[str, Any]


CASES = (
    Case("first page", {}),
    Case("page 1000", {"page": 1000}),
    Case("name filter (~2% match)", {"name": "ohnso"}),
    Case("name filter (rare)", {"name": "Kimberly Hart"}),
    Case("search (common word)", {"search": "magazine"}),
    Case("search (rare phrase)", {"search": "magazine establish behavior"}),
    Case("is_active=false", {"is_active": "false"}),
    Case("is_active=false, page 100", {"is_active": "false", "page": 100}),
    Case("sorted by -updated_at, page 10", {"ordering": "-updated_at", "page": 10}),
)


def _median_ms(call: Callable[[], Any], runs: int, before: Callable[[], None] = lambda: None) -> float:
    timings = []
    call()  # warm the connection pool and the plan cache
    for _ in range(runs):
        before()
        started = time.perf_counter()
        call()
        timings.append((time.perf_counter() - started) * 1000)
    return statistics.median(timings)


def _service_call(case: Case) -> Callable[[], Any]:
    from importer import products
    from importer.db import session_scope

    query = dict(case.query)
    page = int(query.pop("page", 1))
    ordering = query.pop("ordering", None)
    if "is_active" in query:
        query["is_active"] = query["is_active"] == "true"
    filters = products.ProductFilter(**query)

    def call() -> Any:
        with session_scope() as session:
            return products.list_products(session, filters, page=page, ordering=ordering)

    return call


def _api_call(client: Any, case: Case) -> Callable[[], Any]:
    def call() -> Any:
        response = client.get("/api/products/", params=case.query)
        assert response.status_code == 200, response.text
        return response

    return call


def _plan_indexes(case: Case) -> tuple[list[str], list[str]]:
    """Which indexes EXPLAIN shows for the page query and the count query of this case."""
    from sqlalchemy import func, select, text

    from importer import products
    from importer.db import session_scope
    from importer.models import Product

    query = {k: v for k, v in case.query.items() if k not in ("page", "ordering")}
    if "is_active" in query:
        query["is_active"] = query["is_active"] == "true"
    filters = products.ProductFilter(**query)
    statements = (
        products._filtered(select(Product), filters).order_by(*products.parse_ordering(case.query.get("ordering")))
        .limit(50),
        products._filtered(select(func.count()).select_from(Product), filters),
    )
    found = []
    with session_scope() as session:
        for statement in statements:
            compiled = statement.compile(session.get_bind(), compile_kwargs={"literal_binds": True})
            plan = session.execute(text(f"EXPLAIN (FORMAT JSON) {compiled}")).scalar_one()
            found.append(sorted(set(_index_names(plan if isinstance(plan, list) else json.loads(plan)))))
    return found[0], found[1]


def _index_names(node: Any) -> Iterator[str]:
    if isinstance(node, dict):
        if "Index Name" in node:
            yield node["Index Name"]
        for value in node.values():
            yield from _index_names(value)
    elif isinstance(node, list):
        for item in node:
            yield from _index_names(item)


def measure(runs: int) -> None:
    from fastapi import FastAPI
    from fastapi.testclient import TestClient
    from sqlalchemy import select, text

    import api
    from importer import auth, products
    from importer.db import session_scope
    from importer.models import Product

    with session_scope() as session:
        user = auth.get_user_by_name(session, "bench") or auth.create_user(session, "bench", "bench-password")
        token = auth.create_token(session, user)
        middle_id = session.execute(select(Product.id).order_by(Product.id).offset(500_000).limit(1)).scalar() or 1
        total = products.count_products(session)
    app = FastAPI()
    api.register(app)
    client = TestClient(app, headers={"Authorization": f"Bearer {token}"})

    def select_one() -> None:
        with session_scope() as session:
            session.execute(text("SELECT 1"))

    def api_by_id() -> None:
        assert client.get(f"/api/products/{middle_id}/").status_code == 200

    print(f"\n{total:,} products; medians of {runs} runs. Baselines are re-measured beside every case")
    print("(the CPU here drifts), and each latency is also given as a multiple of its baseline:")
    print("  API baseline: GET /api/products/{id}/ (token check + primary-key lookup through the same stack)")
    print("  SQL baseline: SELECT 1 round trip in a session (the raw service calls are compared with it)")
    print("  cold: the count cache emptied before every run; warm: repeated page views\n")
    header = (f"{'case':31} {'count':>9} | {'API cold':>9} {'warm':>8} {'base':>7} {'cold x':>6} {'warm x':>6} | "
              f"{'service':>8} {'SQL base':>8} {'x':>4} | indexes used (page ; count)")
    print(header)
    print("-" * len(header))
    for case in CASES:
        api_call, service_call = _api_call(client, case), _service_call(case)
        if client.get("/api/products/", params=case.query).status_code == 404:
            print(f"{case.label:31} (past the last page of this catalogue)")
            continue
        count = api_call().json()["count"]
        baseline_api = _median_ms(api_by_id, runs)
        cold = _median_ms(api_call, runs, before=products.count_cache.clear)
        warm = _median_ms(api_call, runs)
        baseline_sql = _median_ms(select_one, runs)
        service = _median_ms(service_call, runs)
        page_indexes, count_indexes = _plan_indexes(case)
        print(f"{case.label:31} {count:>9,} | {cold:>7.1f}ms {warm:>6.1f}ms {baseline_api:>5.1f}ms "
              f"{cold / baseline_api:>5.1f}x {warm / baseline_api:>5.1f}x | {service:>6.1f}ms {baseline_sql:>6.2f}ms "
              f"{service / baseline_sql:>3.0f}x | {', '.join(page_indexes) or 'seq scan'} ; "
              f"{', '.join(count_indexes) or 'seq scan'}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--runs", type=int, default=7)
    parser.add_argument("--database-url", default="postgresql://postgres@127.0.0.1:5432/importer_bench")
    parser.add_argument("--reload", action="store_true", help="rebuild the catalogue even if it is loaded")
    parser.add_argument("--pending", type=int, default=0,
                        help="measure as right after an import: this many products not yet in the search index")
    args = parser.parse_args()
    if "test" in args.database_url.rsplit("/", 1)[-1]:
        parser.error("use a dedicated benchmark database, not a test database")
    _ensure_database(args.database_url)
    _configure(args.database_url)
    from importer.db import migrate

    migrate()
    load_catalogue(args.rows, args.seed, args.reload)
    if args.pending:
        _leave_out_of_search_index(args.pending)
    try:
        measure(args.runs)
    finally:
        if args.pending:
            from importer import search_index

            started = time.perf_counter()
            indexed = search_index.index_pending()
            print(f"\nsearch index caught up: {indexed:,} products added in {time.perf_counter() - started:.1f} s")


def _leave_out_of_search_index(rows: int) -> None:
    """What an import leaves behind on PostgreSQL: its rows outside the trigram indexes, for a while."""
    from sqlalchemy import text

    from importer.db import get_engine

    with get_engine().begin() as connection:
        connection.execute(text("UPDATE products SET search_indexed = false WHERE id IN "
                                "(SELECT id FROM products ORDER BY id DESC LIMIT :rows)"), {"rows": rows})
        connection.execute(text("ANALYZE products"))
    print(f"{rows:,} products marked as not yet in the search index (as right after importing them)")


if __name__ == "__main__":
    main()
