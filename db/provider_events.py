"""Provider webhook events (each stored once, by the provider's event id) and reconciler runs.

Apart from `repository.py`: nothing on the order request path reads these tables.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any
from uuid import UUID

from psycopg2.extensions import cursor as Cursor
from psycopg2.extras import Json


@dataclass(frozen=True)
class ProviderEvent:
    """One delivery as the webhook accepted it; `outcome` is filled in once it is handled."""

    event_id: str
    provider: str
    event_type: str
    occurred_at: datetime
    order_id: UUID | None
    reference: str | None


@dataclass(frozen=True)
class ReconcilerRun:
    started_at: datetime
    finished_at: datetime
    window_start: datetime
    window_end: datetime
    orders_checked: int
    provider_calls: int
    findings: dict[str, int]
    repaired: dict[str, int]


class ProviderEventRepository:
    def __init__(self, cursor: Cursor) -> None:
        self._cur = cursor

    def claim(self, event: ProviderEvent) -> bool:
        """Store the event id; False when it was stored before (a redelivery: do nothing).

        The row is written with a provisional outcome in the caller's transaction, so a
        concurrent delivery of the same id waits on the primary key and then finds it taken.
        """
        self._cur.execute(
            "INSERT INTO provider_events (event_id, provider, event_type, occurred_at, order_id,"
            " reference, outcome) VALUES (%s, %s, %s, %s, %s, %s, 'ignored')"
            " ON CONFLICT (event_id) DO NOTHING",
            (event.event_id, event.provider, event.event_type, event.occurred_at,
             event.order_id, event.reference),
        )
        return bool(self._cur.rowcount)

    def record_outcome(
        self, event_id: str, outcome: str, detail: str | None, order_id: UUID | None
    ) -> None:
        """What the event did; `order_id` when the handler found the order by reference (a
        charge or dispute carries no order metadata)."""
        self._cur.execute(
            "UPDATE provider_events SET outcome = %s, detail = %s,"
            " order_id = coalesce(order_id, %s) WHERE event_id = %s",
            (outcome, detail, order_id, event_id),
        )

    def order_for_reference(self, reference: str) -> UUID | None:
        """The order whose payment is this provider reference (a PaymentIntent id)."""
        self._cur.execute("SELECT order_id FROM payments WHERE provider_ref = %s", (reference,))
        row = self._cur.fetchone()
        return row[0] if row else None

    def outcome(self, event_id: str) -> tuple[str, str | None] | None:
        self._cur.execute(
            "SELECT outcome, detail FROM provider_events WHERE event_id = %s", (event_id,)
        )
        row = self._cur.fetchone()
        return (row[0], row[1]) if row else None

    def for_order(self, order_id: UUID) -> list[dict[str, Any]]:
        """The order's provider events, oldest first (for `admin order`)."""
        self._cur.execute(
            "SELECT event_id, event_type, occurred_at, received_at, outcome, detail"
            " FROM provider_events WHERE order_id = %s ORDER BY occurred_at, received_at",
            (order_id,),
        )
        keys = ("event_id", "event_type", "occurred_at", "received_at", "outcome", "detail")
        return [dict(zip(keys, row, strict=True)) for row in self._cur.fetchall()]

    def last_window_end(self) -> datetime | None:
        """Where the last reconciler run stopped reading the provider (None before the first)."""
        self._cur.execute("SELECT max(window_end) FROM reconciler_runs")
        row = self._cur.fetchone()
        return row[0] if row else None

    def record_run(self, run: ReconcilerRun) -> None:
        self._cur.execute(
            "INSERT INTO reconciler_runs (started_at, finished_at, window_start, window_end,"
            " orders_checked, provider_calls, findings, repaired)"
            " VALUES (%s, %s, %s, %s, %s, %s, %s, %s)",
            (run.started_at, run.finished_at, run.window_start, run.window_end,
             run.orders_checked, run.provider_calls, Json(run.findings), Json(run.repaired)),
        )
