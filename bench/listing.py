"""5. Listing at scale: pages of `order_service.list_orders` over a million orders.

The orders are generated in SQL (INSERT ... SELECT generate_series, one item each) into their
own database, which is kept between runs while its size and the migrations are unchanged.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Callable
from typing import Any

from bench.env import BenchEnv, autocommit, configured
from bench.measure import count_sql, counting_connections, interleave, median
from bench.report import Figure, Section, ms, ratio_figure
from bench.sizes import Sizes
from db.migrate import MIGRATIONS_DIR
from processor.api.pagination import encode_cursor
from processor.api.schemas import ListOrdersQuery
from processor.orders import service as order_service

DATABASE = "orderflow_bench_listing"
PAGE = 50
TARGET_RATIO = 2.0
PLAN_LINES = ("Limit", "->", "Index Cond", "Filter", "Rows Removed")
STATUSES = (
    "PENDING",
    "PROCESSING",
    "PAYMENT_CONFIRMED",
    "PAYMENT_FAILED",
    "FULFILLED",
    "COMPLETED",
    "CANCELLED",
)
LOAD = [
    "SET synchronous_commit = off",
    "SET maintenance_work_mem = '256MB'",
    """
    INSERT INTO orders (order_id, customer_email, customer_name, total_amount, status,
                        created_at, updated_at)
    SELECT gen_random_uuid(), 'customer' || mod(g, 20000) || '@example.com', 'Customer ' || g,
           (mod(g, 9999) + 1) / 100.0, (%(statuses)s::text[])[1 + mod(g, 7)],
           timestamptz '2026-01-01 00:00:00+00' + g * interval '1 second',
           timestamptz '2026-01-01 00:00:00+00' + g * interval '1 second'
    FROM generate_series(1, %(rows)s) AS g
    """,
    """
    INSERT INTO order_items (order_id, line_no, product_name, quantity, unit_price)
    SELECT order_id, 1, 'Widget', 1, total_amount FROM orders
    """,
    "CREATE TABLE bench_listing (rows integer NOT NULL, schema text NOT NULL)",
    "INSERT INTO bench_listing VALUES (%(rows)s, %(schema)s)",
]


def _schema_fingerprint() -> str:
    digest = hashlib.sha256()
    for path in sorted(MIGRATIONS_DIR.glob("*.sql")):
        digest.update(path.read_bytes())
    return digest.hexdigest()[:16]


def _prepare(env: BenchEnv, rows: int) -> tuple[str, float | None]:
    """The listing database with `rows` orders; seconds spent loading (None when reused)."""
    schema = _schema_fingerprint()
    url = env.database(DATABASE)
    with autocommit(url) as conn, conn.cursor() as cur:
        cur.execute("SELECT to_regclass('bench_listing') IS NOT NULL")
        if cur.fetchone()[0]:
            cur.execute("SELECT rows, schema FROM bench_listing")
            if cur.fetchone() == (rows, schema):
                return url, None
    url = env.database(DATABASE, recreate=True)
    started = time.perf_counter()
    with autocommit(url) as conn, conn.cursor() as cur:
        for sql in LOAD:
            cur.execute(sql, {"rows": rows, "statuses": list(STATUSES), "schema": schema})
        cur.execute("VACUUM ANALYZE")
    return url, time.perf_counter() - started


def _cursor_at(url: str, depth: int, status: str | None = None) -> str:
    """The cursor a client holds after reading `depth` rows (newest first)."""
    where = "WHERE status = %s" if status else ""
    with autocommit(url) as conn, conn.cursor() as cur:
        cur.execute(
            f"SELECT created_at, order_id FROM orders {where}"
            " ORDER BY created_at DESC, order_id DESC OFFSET %s LIMIT 1",
            [*([status] if status else []), depth - 1],
        )
        created_at, order_id = cur.fetchone()
    return encode_cursor(created_at, order_id)


def _plan(url: str, sql: str) -> list[str]:
    with autocommit(url) as conn, conn.cursor() as cur:
        cur.execute("EXPLAIN (ANALYZE, BUFFERS, COSTS OFF, TIMING OFF, SUMMARY OFF) " + sql)
        return [row[0] for row in cur.fetchall()]


def run(env: BenchEnv, sizes: Sizes) -> Section:
    section = Section("listing", "5. Listing at scale")
    rows, depth = sizes.listing_rows, sizes.listing_depth
    url, load_seconds = _prepare(env, rows)
    status = "COMPLETED"  # one order in seven
    status_depth = min(depth, rows // (2 * len(STATUSES)))
    queries: dict[str, ListOrdersQuery] = {
        "first": ListOrdersQuery(limit=PAGE),
        "cursor": ListOrdersQuery(limit=PAGE, cursor=_cursor_at(url, depth)),
        "offset": ListOrdersQuery(limit=PAGE, offset=depth),
        "status first": ListOrdersQuery(limit=PAGE, status=status),
        "status cursor": ListOrdersQuery(
            limit=PAGE, status=status, cursor=_cursor_at(url, status_depth, status)
        ),
    }
    calls: dict[str, Callable[[], Any]] = {
        name: (lambda q=query: order_service.list_orders(q)) for name, query in queries.items()
    }
    with configured(DATABASE_URL=url), counting_connections():
        timed = interleave(calls, sizes.listing_repeats)
        sql: dict[str, str] = {}
        for name, call in calls.items():
            with count_sql() as count:
                page = call()
            if page["count"] != PAGE:
                raise RuntimeError(f"{name}: expected {PAGE} orders, got {page['count']}")
            sql[name] = count.queries[0]  # the page query; the second fetches its items
    plans = {name: _plan(url, text) for name, text in sql.items()}

    first = median(timed["first"])
    section.figures.append(Figure(name=f"First page ({PAGE} of {rows:,} orders)", result=ms(first)))
    for name, label in (
        ("cursor", f"Cursor (keyset) page {depth:,} rows deep"),
        ("status cursor", f"Cursor page {status_depth:,} rows deep, status={status}"),
    ):
        section.figures.append(
            ratio_figure(label, median(timed[name]), "first page", first, TARGET_RATIO)
        )
    section.figures.append(
        ratio_figure(
            f"Offset page {depth:,} rows deep", median(timed["offset"]), "first page", first, None
        )
    )
    keyset = ("first", "cursor", "status first", "status cursor")
    indexed = all(_index_only_plan(plans[name]) for name in keyset)
    section.figures.append(
        Figure(
            name="Page queries use an index scan, no sort, no seq scan",
            result="yes" if indexed else "no",
            target="index scans",
            passed=indexed,
        )
    )
    loaded = f"loaded in {load_seconds:.0f} s" if load_seconds else "reused from an earlier run"
    section.findings += [
        f"{rows:,} orders ({loaded}). Keyset pages read {PAGE + 1} index entries wherever they"
        f" start: {ms(median(timed['cursor']))} at depth {depth:,} vs {ms(first)} for the first"
        f" page. OFFSET walks and discards {depth:,} entries first:"
        f" {ms(median(timed['offset']))}.",
    ]
    section.detail.append("Plans (EXPLAIN ANALYZE, first lines):")
    section.detail.append("")
    section.detail.append("```")
    for name in ("first", "cursor", "offset", "status cursor"):
        section.detail.append(f"-- {name}")
        section.detail += [line for line in plans[name] if line.lstrip().startswith(PLAN_LINES)]
    section.detail.append("```")
    return section


def _index_only_plan(plan: list[str]) -> bool:
    text = "\n".join(plan)
    return "Index Scan" in text and "Seq Scan" not in text and "Sort" not in text
