"""In-memory stand-ins for the use cases' dependencies (see processor/bootstrap.py).

They keep the behaviour the use cases rely on, and no more: the guarded transition (nothing
written unless the order is in an expected status), the idempotency claim, the payment row
created once, and transactions (a unit of work works on a copy of the store that only
`commit` writes back, so rolled-back work leaves no trace, as in PostgreSQL). The SQL itself is
what the integration tests on the real database are for.
"""

from __future__ import annotations

import copy
import dataclasses
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from typing import Any
from uuid import UUID

from db.repository import (
    HistoryRow,
    IdempotencyRecord,
    ItemRow,
    ListQuery,
    NewOrder,
    OrderRow,
    OutboxRecord,
    PaymentRow,
    Transition,
)
from db.uow import UnitOfWork
from processor.adapters.payments import ChargeResult, TransientPaymentError
from processor.bootstrap import Dependencies
from processor.config import Settings


@dataclass
class Store:
    """What the database would hold; `history` oldest first, as it was written."""

    orders: dict[UUID, OrderRow] = field(default_factory=dict)
    items: dict[UUID, list[ItemRow]] = field(default_factory=dict)
    history: dict[UUID, list[HistoryRow]] = field(default_factory=dict)
    payments: dict[UUID, PaymentRow] = field(default_factory=dict)
    payment_started: set[UUID] = field(default_factory=set)
    idempotency: dict[str, IdempotencyRecord] = field(default_factory=dict)
    outbox: list[OutboxRecord] = field(default_factory=list)
    owners: dict[UUID, str | None] = field(default_factory=dict)
    next_id: int = 1

    def statuses(self, order_id: UUID) -> list[str]:
        return [row.status for row in self.history[order_id]]


class FakeOrderRepository:
    def __init__(self, store: Store) -> None:
        self._store = store

    def add(self, new: NewOrder) -> int | None:
        s, order, idempotency = self._store, new.order, new.idempotency
        if idempotency is not None:
            if idempotency.key in s.idempotency:
                return None
            s.idempotency[idempotency.key] = IdempotencyRecord(
                idempotency.request_hash, idempotency.response_status, idempotency.response_body
            )
        s.orders[order.order_id] = order
        s.owners[order.order_id] = new.customer_sub
        s.items[order.order_id] = list(new.items)
        s.history[order.order_id] = [HistoryRow(order.status, None, order.created_at)]
        queued = self._outbox("order", order.order_id, order.status, new.queue_message)
        self._outbox("notification", order.order_id, order.status, {"status": order.status})
        return queued

    def idempotency_record(self, key: str) -> IdempotencyRecord | None:
        return self._store.idempotency.get(key)

    def get(self, order_id: UUID, owner: str | None = None) -> OrderRow | None:
        if owner is not None and self._store.owners.get(order_id) != owner:
            return None
        return self._store.orders.get(order_id)

    def get_status(self, order_id: UUID, owner: str | None = None) -> str | None:
        order = self.get(order_id, owner)
        return order.status if order else None

    def items_for(self, order_ids: list[UUID]) -> dict[UUID, list[ItemRow]]:
        return {order_id: list(self._store.items.get(order_id, [])) for order_id in order_ids}

    def history(self, order_id: UUID) -> list[HistoryRow]:
        return list(reversed(self._store.history.get(order_id, [])))

    def list(self, query: ListQuery) -> list[OrderRow]:
        s = self._store
        rows = sorted(
            self._store.orders.values(), key=lambda o: (o.created_at, o.order_id), reverse=True
        )
        rows = [
            o
            for o in rows
            if (query.status is None or o.status == query.status)
            and (query.customer_email is None or o.customer_email == query.customer_email)
            and (query.customer_sub is None or s.owners.get(o.order_id) == query.customer_sub)
            and (query.after is None or (o.created_at, o.order_id) < query.after)
        ]
        return rows[query.offset : query.offset + query.limit]

    def transition(self, step: Transition) -> int | None:
        s, order_id, target = self._store, step.order_id, step.target
        order = self.get(order_id, step.owner)
        if order is None or order.status not in step.expected:
            return None
        if step.require_no_payment and order_id in s.payment_started:
            return None
        s.orders[order_id] = dataclasses.replace(order, status=target, updated_at=step.now)
        s.history[order_id].append(HistoryRow(target, step.reason, step.now))
        notification = {"status": target, "reason": step.reason}
        return self._outbox("notification", order_id, target, notification)

    def start_payment(self, order_id: UUID, now: datetime) -> PaymentRow | None:
        s = self._store
        order = s.orders.get(order_id)
        if order is None or order.status != "PROCESSING":
            return None
        s.payment_started.add(order_id)
        return s.payments.setdefault(
            order_id, PaymentRow("PENDING", order.total_amount, None, None, 0)
        )

    def _outbox(self, kind: str, order_id: UUID, status: str, payload: dict[str, Any]) -> int:
        record = OutboxRecord(self._store.next_id, kind, order_id, status, payload, 0)
        self._store.next_id += 1
        self._store.outbox.append(record)
        return record.id


class FakePaymentRepository:
    def __init__(self, store: Store) -> None:
        self._store = store

    def record_attempts(self, order_id: UUID, attempts: int) -> None:
        row = self._store.payments[order_id]
        self._store.payments[order_id] = dataclasses.replace(row, attempts=row.attempts + attempts)

    def record_outcome(
        self, order_id: UUID, outcome: str, provider_ref: str | None, decline_reason: str | None
    ) -> None:
        row = self._store.payments[order_id]
        if row.outcome == "PENDING":
            self._store.payments[order_id] = dataclasses.replace(
                row, outcome=outcome, provider_ref=provider_ref, decline_reason=decline_reason
            )


class FakeUnitOfWork(UnitOfWork):
    """A transaction over `store`: repositories see a private copy until `commit`.
    `single_statement=True` commits on a clean exit, as autocommit does."""

    def __init__(self, store: Store, single_statement: bool = False) -> None:
        self._store = store
        self._single_statement = single_statement

    def __enter__(self) -> FakeUnitOfWork:
        self._working = copy.deepcopy(self._store)
        self.orders = FakeOrderRepository(self._working)  # type: ignore[assignment]
        self.payments = FakePaymentRepository(self._working)  # type: ignore[assignment]
        return self

    def commit(self) -> None:
        self._store.__dict__.update(copy.deepcopy(self._working).__dict__)

    def rollback(self) -> None:
        self._working = copy.deepcopy(self._store)

    def _end(self, exc: BaseException | None) -> None:
        if self._single_statement and exc is None:
            self.commit()


@dataclass
class FakePublisher:
    new_orders: list[OutboxRecord] = field(default_factory=list)
    notified: list[UUID] = field(default_factory=list)

    def publish_new_order(self, record: OutboxRecord) -> None:
        self.new_orders.append(record)

    def publish_notifications(self, order_id: UUID) -> None:
        self.notified.append(order_id)


@dataclass
class FakeProvider:
    """Approves unless told otherwise; `transient_failures` calls fail first, then it answers."""

    decline_reason: str | None = None
    transient_failures: int = 0
    calls: list[tuple[str, Decimal, int]] = field(default_factory=list)

    def charge(
        self, idempotency_key: str, amount: Decimal, customer_email: str, attempt: int
    ) -> ChargeResult:
        self.calls.append((idempotency_key, amount, attempt))
        if len(self.calls) <= self.transient_failures:
            raise TransientPaymentError("provider timed out (fake)")
        if self.decline_reason:
            return ChargeResult(False, decline_reason=self.decline_reason)
        return ChargeResult(True, reference=f"ch_fake_{idempotency_key}")


@dataclass
class FakeSystem:
    """Dependencies wired to fakes, with the fakes at hand for assertions."""

    store: Store = field(default_factory=Store)
    provider: FakeProvider = field(default_factory=FakeProvider)
    publisher: FakePublisher = field(default_factory=FakePublisher)
    settings: Settings = field(
        default_factory=lambda: dataclasses.replace(
            Settings.from_env(),
            payment_retry_attempts=3,
            payment_retry_base_seconds=0,
            fulfilment_delay_seconds=0,
            completion_delay_seconds=0,
        )
    )

    @property
    def deps(self) -> Dependencies:
        return Dependencies(
            settings=self.settings,
            uow=lambda single_statement=False: FakeUnitOfWork(self.store, single_statement),
            payments=self.provider,
            publisher=self.publisher,
        )
