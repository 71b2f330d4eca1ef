"""Timing, statement counting and AWS call accounting.

Ratios are the point: absolute times on a shared 2-core machine drift by tens of percent from
run to run, so each figure is measured against a baseline in the same run, interleaved call by
call so that drift hits both sides alike, and summarised by medians.
"""

from __future__ import annotations

import contextlib
import statistics
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any
from unittest import mock

import psycopg2
import psycopg2.extensions as ext

from db import connection as db_connection


def percentile(samples: list[float], pct: float) -> float:
    """Nearest-rank percentile (pct in 0..100)."""
    if not samples:
        return float("nan")
    ordered = sorted(samples)
    rank = max(0, min(len(ordered) - 1, round(pct / 100 * len(ordered) + 0.5) - 1))
    return ordered[rank]


def run_timed(fn: Callable[[], Any], n: int) -> list[float]:
    """Seconds per call for n calls."""
    samples = []
    for _ in range(n):
        started = time.perf_counter()
        fn()
        samples.append(time.perf_counter() - started)
    return samples


def interleave(
    contenders: dict[str, Callable[[], Any]], calls: int, warmup: int = 3
) -> dict[str, list[float]]:
    """Seconds per call of each contender, calling them in turn, call by call, so that drift
    (another process hitting the disk, CPU frequency) lands on all of them alike.

    The order rotates every round: a call pays for what the database still does after the
    previous one (WAL flush, a backend finishing up), so each contender follows each other
    equally often instead of always following the same one.
    """
    for fn in contenders.values():
        run_timed(fn, warmup)
    names = list(contenders)
    samples: dict[str, list[float]] = {name: [] for name in names}
    for round_no in range(calls):
        shift = round_no % len(names)
        for name in names[shift:] + names[:shift]:
            samples[name] += run_timed(contenders[name], 1)
    return samples


def median(samples: list[float]) -> float:
    return statistics.median(samples)


@contextlib.contextmanager
def time_calls(owner: Any, attribute: str, sink: list[float]) -> Iterator[None]:
    """Append the duration of every call to `owner.attribute` made inside the block."""
    original = getattr(owner, attribute)

    def timed(*args: Any, **kwargs: Any) -> Any:
        started = time.perf_counter()
        try:
            return original(*args, **kwargs)
        finally:
            sink.append(time.perf_counter() - started)

    with mock.patch.object(owner, attribute, timed):
        yield


def await_completed(
    cur: Any,
    orders: int,
    deadline: float,
    between: Callable[[int, int], bool] = lambda done, created: False,
    alive: Callable[[], bool] = lambda: True,
) -> int:
    """Poll the orders table every 0.1 s until `orders` orders are COMPLETED; return the
    largest backlog seen (created, not yet completed).

    The end-to-end benchmarks all end this way, so they share one poll. `between(done,
    created)` runs after each poll that is not the last: a producer that holds the backlog
    down feeds more orders there and returns True to poll again at once. A processor that
    died (`alive()` false) or a missed `deadline` (a `time.perf_counter()` value) fails the
    run instead of waiting forever."""
    most = 0
    while True:
        cur.execute("SELECT count(*) FILTER (WHERE status = 'COMPLETED'), count(*) FROM orders")
        done, created = cur.fetchone()
        most = max(most, created - done)
        if done >= orders:
            return most
        if between(done, created):
            continue
        if time.perf_counter() > deadline or not alive():
            raise RuntimeError(f"only {done} of {orders} orders completed in time")
        time.sleep(0.1)


# --- SQL statement and round-trip counting -------------------------------------------------


def run_transaction(conn: Any, statements: list[tuple[str, Any]], packed: bool) -> None:
    """Run a baseline's statements in one transaction and commit: `packed` sends them as one
    multi-statement string (one round trip), otherwise one execute each."""
    with conn.cursor() as cur:
        if packed:
            cur.execute(b"; ".join(cur.mogrify(sql, params) for sql, params in statements))
        else:
            for sql, params in statements:
                cur.execute(sql, params)
    conn.commit()


@dataclass
class SqlCount:
    """What one connection sent: statements, and the BEGIN/COMMIT/ROLLBACK psycopg2 adds."""

    statements: int = 0
    begins: int = 0
    commits: int = 0
    rollbacks: int = 0
    queries: list[str] = field(default_factory=list)
    per_transaction: list[int] = field(default_factory=list)  # statements in each

    @property
    def round_trips(self) -> int:
        return self.statements + self.begins + self.commits + self.rollbacks

    @property
    def transactions(self) -> int:
        return len(self.per_transaction)


_counts = threading.local()


def _current() -> SqlCount | None:
    return getattr(_counts, "count", None)


class _CountingCursor(ext.cursor):
    def execute(self, query: Any, vars: Any = None) -> None:
        count = _current()
        if count is not None:
            count.statements += 1
            conn = self.connection
            if conn.autocommit or conn.status == ext.STATUS_READY:
                count.per_transaction.append(0)
                if not conn.autocommit:
                    count.begins += 1  # psycopg2 sends BEGIN first, as its own round trip
            count.per_transaction[-1] += 1
        super().execute(query, vars)
        if count is not None and self.query is not None:
            count.queries.append(self.query.decode(errors="replace"))


class CountingConnection(ext.connection):
    """A psycopg2 connection that counts what it sends to the server for this thread."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.cursor_factory = _CountingCursor

    def commit(self) -> None:
        count = _current()
        if count is not None and self.status != ext.STATUS_READY:
            count.commits += 1
        super().commit()

    def rollback(self) -> None:
        count = _current()
        if count is not None and self.status != ext.STATUS_READY:
            count.rollbacks += 1
        super().rollback()


@contextlib.contextmanager
def counting_connections() -> Iterator[None]:
    """Connections the service opens inside the block are CountingConnections."""
    original = psycopg2.connect

    def connect(*args: Any, **kwargs: Any) -> Any:
        kwargs.setdefault("connection_factory", CountingConnection)
        return original(*args, **kwargs)

    db_connection.discard_connection()
    with mock.patch.object(db_connection.psycopg2, "connect", connect):
        try:
            yield
        finally:
            db_connection.discard_connection()


@contextlib.contextmanager
def count_sql() -> Iterator[SqlCount]:
    """Count statements on this thread's (counting) connections while the block runs."""
    count = SqlCount()
    _counts.count = count
    try:
        yield count
    finally:
        _counts.count = None


# --- AWS call accounting -------------------------------------------------------------------


@dataclass
class AwsCalls:
    """AWS API calls made inside a block, over all threads: how many, and seconds inside."""

    counts: Counter[str] = field(default_factory=Counter)
    seconds: Counter[str] = field(default_factory=Counter)
    empty_receives: int = 0

    @property
    def total(self) -> int:
        return sum(self.counts.values())


@contextlib.contextmanager
def record_aws_calls() -> Iterator[AwsCalls]:
    """Count every botocore API call (each is a billed AWS request) and time the ones doing
    work; a receive that returns nothing is long-poll waiting, counted but not timed."""
    from botocore.client import BaseClient

    calls = AwsCalls()
    lock = threading.Lock()
    original = BaseClient._make_api_call

    def recorded(self: Any, operation: str, params: dict[str, Any]) -> Any:
        started = time.perf_counter()
        response = original(self, operation, params)
        spent = time.perf_counter() - started
        with lock:
            calls.counts[operation] += 1
            if operation == "ReceiveMessage" and not response.get("Messages"):
                calls.empty_receives += 1
            else:
                calls.seconds[operation] += spent
        return response

    with mock.patch.object(BaseClient, "_make_api_call", recorded):
        yield calls
