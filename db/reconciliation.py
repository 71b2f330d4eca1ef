"""Read-side queries of the reconciler: which payments to compare with the provider, and our
side of what the provider lists. Bounded: every query takes a limit or a list of keys."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from uuid import UUID

from psycopg2.extensions import cursor as Cursor


@dataclass(frozen=True)
class PaymentToCheck:
    order_id: UUID
    order_status: str
    total_amount: Decimal
    order_currency: str
    status: str
    provider_ref: str
    authorized_minor: int
    captured_minor: int
    refunded_minor: int
    authorized_age_seconds: float


@dataclass(frozen=True)
class OrderAmount:
    order_id: UUID
    status: str
    total_amount: Decimal
    currency: str


class ReconcilerQueries:
    def __init__(self, cursor: Cursor) -> None:
        self._cur = cursor

    def payments_to_check(
        self, provider: str, final_statuses: list[str], recent_since: datetime, limit: int
    ) -> list[PaymentToCheck]:
        """Payments of this provider on orders still moving, changed recently, or whose
        authorisation may still hold money: most recently changed first, at most `limit`
        (one provider call each)."""
        self._cur.execute(
            "SELECT p.order_id, o.status, o.total_amount, o.currency, p.status, p.provider_ref,"
            " p.authorized_minor, p.captured_minor, p.refunded_minor,"
            " extract(epoch FROM now() - p.created_at)::float"
            " FROM payments p JOIN orders o ON o.order_id = p.order_id"
            " WHERE p.provider = %s AND p.provider_ref IS NOT NULL"
            " AND (o.status <> ALL(%s) OR o.updated_at >= %s"
            "      OR p.status IN ('AUTHORIZED', 'VOIDING'))"
            " ORDER BY o.updated_at DESC LIMIT %s",
            (provider, final_statuses, recent_since, limit),
        )
        return [PaymentToCheck(*row) for row in self._cur.fetchall()]

    def orders(self, order_ids: list[UUID]) -> dict[UUID, OrderAmount]:
        self._cur.execute(
            "SELECT order_id, status, total_amount, currency FROM orders"
            " WHERE order_id = ANY(%s::uuid[])",
            ([str(o) for o in order_ids],),
        )
        return {row[0]: OrderAmount(*row) for row in self._cur.fetchall()}

    def payments_by_reference(self, references: list[str]) -> dict[str, tuple[UUID, str]]:
        """provider_ref -> (order_id, payment status)."""
        self._cur.execute(
            "SELECT provider_ref, order_id, status FROM payments WHERE provider_ref = ANY(%s)",
            (references,),
        )
        return {row[0]: (row[1], row[2]) for row in self._cur.fetchall()}

    def known_refunds(self, references: list[str]) -> set[str]:
        self._cur.execute(
            "SELECT provider_ref FROM refunds WHERE provider_ref = ANY(%s)", (references,)
        )
        return {row[0] for row in self._cur.fetchall()}

    def refunds_between(
        self, since: datetime, until: datetime, limit: int
    ) -> list[tuple[UUID, str, str | None, float]]:
        """(order_id, status, provider_ref, age seconds) of our refunds in the window that
        claim to be at the provider or are still waiting for its answer."""
        self._cur.execute(
            "SELECT order_id, status, provider_ref, extract(epoch FROM now() - created_at)::float"
            " FROM refunds WHERE created_at >= %s AND created_at < %s"
            " AND status IN ('SUCCEEDED', 'PENDING') ORDER BY created_at LIMIT %s",
            (since, until, limit),
        )
        return list(self._cur.fetchall())

    def disputes_since(self, since: datetime, limit: int) -> list[tuple[UUID | None, str]]:
        """(order_id, detail) of dispute events the webhook received since `since`."""
        self._cur.execute(
            "SELECT order_id, coalesce(detail, event_id) FROM provider_events"
            " WHERE event_type = 'charge.dispute.created' AND received_at >= %s"
            " ORDER BY received_at LIMIT %s",
            (since, limit),
        )
        return list(self._cur.fetchall())
