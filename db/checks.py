"""Read-only consistency queries behind `python -m processor admin check`.

Each query returns only rows that break a rule, so a healthy database answers with empty
results however large it is. The rules' parameters (the lifecycle table, which payment outcome
each status implies) come from the caller, so the domain stays the single source of truth.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from decimal import Decimal
from typing import Any
from uuid import UUID

from psycopg2.extensions import cursor as Cursor

from db.connection import open_connection
from db.errors import translating
from db.reporting import Reporting


class InvariantQueries:
    def __init__(self, cursor: Cursor) -> None:
        self._cur = cursor

    def counts(self) -> dict[str, int]:
        self._cur.execute(
            "SELECT (SELECT count(*) FROM orders), (SELECT count(*) FROM order_status_history),"
            " (SELECT count(*) FROM outbox), (SELECT count(*) FROM outbox"
            " WHERE published_at IS NULL), (SELECT count(*) FROM payments)"
        )
        names = ("orders", "history_rows", "outbox_records", "unsent_outbox", "payments")
        row = self._cur.fetchone()
        assert row is not None  # a SELECT without FROM returns exactly one row
        return dict(zip(names, (int(n) for n in row), strict=True))

    def invalid_histories(self, valid_paths: list[str], limit: int) -> list[tuple[UUID, str, str]]:
        """(order_id, status, path) where `path|status` is not one of `valid_paths`.

        The path is the history in insertion order joined by '>', e.g. `PENDING>PROCESSING`;
        a gap, a repeat, a wrong order or a current status that is not the last entry all
        produce a string outside the valid set.
        """
        self._cur.execute(
            "SELECT o.order_id, o.status, coalesce(string_agg(h.status, '>' ORDER BY h.id), '')"
            " FROM orders o LEFT JOIN order_status_history h ON h.order_id = o.order_id"
            " GROUP BY o.order_id, o.status"
            " HAVING coalesce(string_agg(h.status, '>' ORDER BY h.id), '') || '|' || o.status"
            " <> ALL(%s) LIMIT %s",
            (valid_paths, limit),
        )
        return list(self._cur.fetchall())

    def duplicate_outbox(self, limit: int) -> list[tuple[str, UUID, str, int]]:
        """(kind, order_id, status, copies): one record per (kind, order, status) is the rule."""
        self._cur.execute(
            "SELECT kind, order_id, status, count(*) FROM outbox GROUP BY kind, order_id, status"
            " HAVING count(*) > 1 LIMIT %s",
            (limit,),
        )
        return list(self._cur.fetchall())

    def missing_notifications(self, limit: int) -> list[tuple[UUID, str]]:
        """History entries with no notification record: a saved state nobody will hear of."""
        self._cur.execute(
            "SELECT h.order_id, h.status FROM order_status_history h"
            " WHERE NOT EXISTS (SELECT 1 FROM outbox n WHERE n.kind = 'notification'"
            " AND n.order_id = h.order_id AND n.status = h.status) LIMIT %s",
            (limit,),
        )
        return list(self._cur.fetchall())

    def orphan_notifications(self, limit: int) -> list[tuple[UUID, str]]:
        """Notification records for a status the order never had: an email about nothing."""
        self._cur.execute(
            "SELECT n.order_id, n.status FROM outbox n WHERE n.kind = 'notification'"
            " AND NOT EXISTS (SELECT 1 FROM order_status_history h"
            " WHERE h.order_id = n.order_id AND h.status = n.status) LIMIT %s",
            (limit,),
        )
        return list(self._cur.fetchall())

    def unqueued_orders(self, limit: int) -> list[UUID]:
        """Orders without their queue-message record: nothing would ever process them."""
        self._cur.execute(
            "SELECT o.order_id FROM orders o WHERE NOT EXISTS (SELECT 1 FROM outbox m"
            " WHERE m.kind = 'order' AND m.order_id = o.order_id) LIMIT %s",
            (limit,),
        )
        return [row[0] for row in self._cur.fetchall()]

    def unsent_outbox(
        self, older_than_seconds: float, limit: int
    ) -> list[tuple[int, str, UUID, str, float, int, str | None]]:
        """(id, kind, order_id, status, age seconds, attempts, last error) of late records."""
        self._cur.execute(
            "SELECT id, kind, order_id, status, extract(epoch FROM now() - created_at)::float,"
            " attempts, last_error FROM outbox WHERE published_at IS NULL"
            " AND created_at < now() - make_interval(secs => %s) ORDER BY id LIMIT %s",
            (older_than_seconds, limit),
        )
        return list(self._cur.fetchall())

    def total_mismatches(self, limit: int) -> list[tuple[UUID, Decimal, Decimal, int]]:
        """(order_id, stored total, sum of quantity x unit price, item count) that disagree."""
        self._cur.execute(
            "SELECT o.order_id, o.total_amount, coalesce(sum(i.quantity * i.unit_price), 0),"
            " count(i.line_no) FROM orders o LEFT JOIN order_items i ON i.order_id = o.order_id"
            " GROUP BY o.order_id, o.total_amount"
            " HAVING count(i.line_no) = 0 OR o.total_amount <> sum(i.quantity * i.unit_price)"
            " LIMIT %s",
            (limit,),
        )
        return list(self._cur.fetchall())

    def payment_mismatches(
        self, allowed: list[str], limit: int
    ) -> list[tuple[UUID, str, str | None, Any, Decimal]]:
        """(order_id, status, payment status, payment amount, order total) where the pair
        `ORDER_STATUS:PAYMENT_STATUS` (NONE without a payment) is not `allowed`, the amounts
        differ, or more was captured than authorised or refunded than captured."""
        self._cur.execute(
            "SELECT o.order_id, o.status, p.status, p.amount, o.total_amount"
            " FROM orders o LEFT JOIN payments p ON p.order_id = o.order_id"
            " WHERE o.status || ':' || coalesce(p.status, 'NONE') <> ALL(%s)"
            " OR p.amount <> o.total_amount OR p.captured_minor > p.authorized_minor"
            " OR p.refunded_minor > p.captured_minor"
            " OR (p.status = 'CAPTURED') <> (p.captured_minor > 0) LIMIT %s",
            (allowed, limit),
        )
        return list(self._cur.fetchall())


@dataclass(frozen=True)
class Snapshot:
    """The checker's queries, all on one cursor (so one transaction, one consistent view)."""

    checks: InvariantQueries
    reporting: Reporting

    @classmethod
    def on(cls, cursor: Cursor) -> Snapshot:
        return cls(InvariantQueries(cursor), Reporting(cursor))


@contextmanager
def read_only_snapshot() -> Iterator[Snapshot]:
    """A read-only REPEATABLE READ transaction on a connection of its own: one consistent
    snapshot however long the checks take, and a checker that can never write. Driver errors
    leave as `db.errors` exceptions."""
    with translating():
        conn = open_connection()  # re-reads a rotated secret, as every other connection does
        try:
            conn.set_session(readonly=True, isolation_level="REPEATABLE READ")
            with conn.cursor() as cur:
                yield Snapshot.on(cur)
            conn.rollback()
        finally:
            conn.close()
