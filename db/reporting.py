"""Read-only queries for operators (admin CLI); kept apart from the request-path repository."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any
from uuid import UUID

from psycopg2.extensions import cursor as Cursor


@dataclass(frozen=True)
class StuckOrder:
    order_id: UUID
    status: str
    total_amount: Decimal
    updated_at: datetime
    age_seconds: float


@dataclass(frozen=True)
class OutboxEntry:
    id: int
    kind: str
    order_id: UUID
    status: str
    created_at: datetime
    published_at: datetime | None
    attempts: int
    last_error: str | None


class Reporting:
    def __init__(self, cursor: Cursor) -> None:
        self._cur = cursor

    def stuck_orders(
        self, final_statuses: list[str], older_than_seconds: float, limit: int = 100
    ) -> list[StuckOrder]:
        """Orders not in a final state whose last change is older than the threshold, oldest
        first: the one definition of "stuck" behind `admin stuck` and the invariant checker.
        The caller passes the final statuses so the domain stays their single source."""
        self._cur.execute(
            "SELECT order_id, status, total_amount, updated_at,"
            " extract(epoch FROM now() - updated_at)::float FROM orders"
            " WHERE status <> ALL(%s) AND updated_at < now() - make_interval(secs => %s)"
            " ORDER BY updated_at LIMIT %s",
            (final_statuses, older_than_seconds, limit),
        )
        return [StuckOrder(*row) for row in self._cur.fetchall()]

    def outbox_entries(
        self,
        order_id: UUID | None = None,
        kind: str | None = None,
        unsent_only: bool = False,
        limit: int = 50,
    ) -> list[OutboxEntry]:
        """Newest first."""
        where = ["TRUE"]
        params: list[Any] = []
        if order_id is not None:
            where.append("order_id = %s")
            params.append(order_id)
        if kind is not None:
            where.append("kind = %s")
            params.append(kind)
        if unsent_only:
            where.append("published_at IS NULL")
        params.append(limit)
        self._cur.execute(
            "SELECT id, kind, order_id, status, created_at, published_at, attempts, last_error"
            f" FROM outbox WHERE {' AND '.join(where)} ORDER BY id DESC LIMIT %s",
            params,
        )
        return [OutboxEntry(*row) for row in self._cur.fetchall()]

    def outbox_lag(self) -> tuple[int, float]:
        """(unsent records, age in seconds of the oldest one)."""
        self._cur.execute(
            "SELECT count(*), coalesce(extract(epoch FROM now() - min(created_at)), 0)::float"
            " FROM outbox WHERE published_at IS NULL"
        )
        row = self._cur.fetchone()
        assert row is not None  # an aggregate without GROUP BY returns exactly one row
        count, age = row
        return int(count), float(age)

    def payment(self, order_id: UUID) -> dict[str, Any] | None:
        """The payment row for operators: its provider-side status and amounts (minor units),
        the idempotency key of each operation started, and its refunds."""
        keys = (
            "outcome", "amount", "provider_ref", "decline_reason", "attempts", "updated_at",
            "provider", "status", "currency", "authorized_minor", "captured_minor",
            "refunded_minor", "authorize_key", "capture_key", "void_key", "failure_message",
        )
        self._cur.execute(
            f"SELECT {', '.join(keys)} FROM payments WHERE order_id = %s", (order_id,)
        )
        row = self._cur.fetchone()
        if row is None:
            return None
        payment = dict(zip(keys, row, strict=True))
        self._cur.execute(
            "SELECT refund_id, amount_minor, status, provider_key, provider_ref, created_at"
            " FROM refunds WHERE order_id = %s ORDER BY created_at",
            (order_id,),
        )
        refund_keys = ("refund_id", "amount_minor", "status", "provider_key", "provider_ref",
                       "created_at")
        payment["refunds"] = [dict(zip(refund_keys, r, strict=True)) for r in self._cur.fetchall()]
        return payment

    def status_counts(self) -> dict[str, int]:
        self._cur.execute("SELECT status, count(*) FROM orders GROUP BY status ORDER BY status")
        return {status: int(n) for status, n in self._cur.fetchall()}
