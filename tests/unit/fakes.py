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
from collections.abc import Mapping
from dataclasses import dataclass, field
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
    PaymentMove,
    PaymentRow,
    PaymentStart,
    RefundRow,
    Transition,
)
from db.uow import UnitOfWork
from processor.adapters.payments.base import (
    Authorization,
    PaymentProvider,
    PaymentResult,
    PaymentState,
    RefundResult,
    TransientPaymentError,
    WebhookAction,
)
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
    refunds: list[RefundRow] = field(default_factory=list)
    idempotency: dict[str, IdempotencyRecord] = field(default_factory=dict)
    outbox: list[OutboxRecord] = field(default_factory=list)
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
        s.items[order.order_id] = list(new.items)
        s.history[order.order_id] = [HistoryRow(order.status, None, order.created_at)]
        queued = self._outbox("order", order.order_id, order.status, new.queue_message)
        self._outbox("notification", order.order_id, order.status, {"status": order.status})
        return queued

    def idempotency_record(self, key: str) -> IdempotencyRecord | None:
        return self._store.idempotency.get(key)

    def get(self, order_id: UUID) -> OrderRow | None:
        return self._store.orders.get(order_id)

    def get_status(self, order_id: UUID) -> str | None:
        order = self._store.orders.get(order_id)
        return order.status if order else None

    def items_for(self, order_ids: list[UUID]) -> dict[UUID, list[ItemRow]]:
        return {order_id: list(self._store.items.get(order_id, [])) for order_id in order_ids}

    def history(self, order_id: UUID) -> list[HistoryRow]:
        return list(reversed(self._store.history.get(order_id, [])))

    def list(self, query: ListQuery) -> list[OrderRow]:
        rows = sorted(
            self._store.orders.values(), key=lambda o: (o.created_at, o.order_id), reverse=True
        )
        rows = [
            o
            for o in rows
            if (query.status is None or o.status == query.status)
            and (query.customer_email is None or o.customer_email == query.customer_email)
            and (query.after is None or (o.created_at, o.order_id) < query.after)
        ]
        return rows[query.offset : query.offset + query.limit]

    def transition(self, step: Transition) -> int | None:
        s, order_id, target = self._store, step.order_id, step.target
        order = s.orders.get(order_id)
        if order is None or order.status not in step.expected:
            return None
        if step.require_no_payment and order_id in s.payment_started:
            return None
        s.orders[order_id] = dataclasses.replace(order, status=target, updated_at=step.now)
        s.history[order_id].append(HistoryRow(target, step.reason, step.now))
        notification = {"status": target, "reason": step.reason}
        return self._outbox("notification", order_id, target, notification)

    def start_payment(self, start: PaymentStart) -> PaymentRow | None:
        s, order_id = self._store, start.order_id
        order = s.orders.get(order_id)
        if order is None or order.status != "PROCESSING":
            return None
        s.payment_started.add(order_id)
        new = PaymentRow(
            order_id,
            "AUTHORIZING",
            start.provider,
            order.currency,
            start.amount_minor,
            0,
            0,
            0,
            None,
            None,
            None,
            0,
        )
        return s.payments.setdefault(order_id, new)

    def _outbox(self, kind: str, order_id: UUID, status: str, payload: dict[str, Any]) -> int:
        record = OutboxRecord(self._store.next_id, kind, order_id, status, payload, 0)
        self._store.next_id += 1
        self._store.outbox.append(record)
        return record.id


class FakePaymentRepository:
    def __init__(self, store: Store) -> None:
        self._store = store

    def get(self, order_id: UUID, for_update: bool = False) -> PaymentRow | None:
        return self._store.payments.get(order_id)

    def record_attempts(self, order_id: UUID, attempts: int) -> None:
        row = self._store.payments[order_id]
        self._store.payments[order_id] = dataclasses.replace(row, attempts=row.attempts + attempts)

    def move(self, step: PaymentMove) -> PaymentRow | None:
        s = self._store
        row = s.payments.get(step.order_id)
        order = s.orders.get(step.order_id)
        if row is None or row.status not in step.expected:
            return None
        if step.order_statuses is not None and (
            order is None or order.status not in step.order_statuses
        ):
            return None
        changes = {
            name: value
            for name, value in (
                ("provider_ref", step.provider_ref),
                ("authorized_minor", step.authorized_minor),
                ("captured_minor", step.captured_minor),
                ("decline_reason", step.decline_reason),
                ("failure_message", step.failure_message),
            )
            if value is not None
        }
        s.payments[step.order_id] = dataclasses.replace(
            row, status=step.target, attempts=row.attempts + step.add_attempts, **changes
        )
        return s.payments[step.order_id]

    def add_refund(self, refund: RefundRow) -> bool:
        if refund.request_key and self.refund_by_request_key(refund.request_key):
            return False
        self._store.refunds.append(refund)
        return True

    def refunds(self, order_id: UUID) -> list[RefundRow]:
        return [r for r in self._store.refunds if r.order_id == order_id]

    def refund_by_request_key(self, key: str) -> RefundRow | None:
        return next((r for r in self._store.refunds if r.request_key == key), None)

    def finish_refund(
        self, refund_id: UUID, succeeded: bool, provider_ref: str | None, message: str | None
    ) -> PaymentRow | None:
        s = self._store
        index = next(i for i, r in enumerate(s.refunds) if r.refund_id == refund_id)
        refund = s.refunds[index]
        if refund.status != "PENDING":
            return None
        status = "SUCCEEDED" if succeeded else "FAILED"
        s.refunds[index] = dataclasses.replace(
            refund, status=status, provider_ref=provider_ref, failure_message=message
        )
        row = s.payments[refund.order_id]
        added = refund.amount_minor if succeeded else 0
        s.payments[refund.order_id] = dataclasses.replace(
            row, refunded_minor=row.refunded_minor + added
        )
        return s.payments[refund.order_id]


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


class FakeProvider(PaymentProvider):
    """Approves unless told otherwise; `transient_failures` authorisations fail first, then it
    answers. `calls` logs (operation, idempotency key, amount in minor units, attempt)."""

    identifier = "fake"

    def __init__(
        self,
        decline_reason: str | None = None,
        transient_failures: int = 0,
        capture_refused: bool = False,
    ) -> None:
        self.decline_reason = decline_reason
        self.transient_failures = transient_failures
        self.capture_refused = capture_refused
        self.calls: list[tuple[str, str, int, int]] = []

    def authorize(self, request: Authorization) -> PaymentResult:
        self.calls.append(
            ("authorize", request.idempotency_key, request.amount_minor, request.attempt)
        )
        if len(self.calls) <= self.transient_failures:
            raise TransientPaymentError("provider timed out (fake)")
        reference = f"pi_fake_{request.order_id}"
        if self.decline_reason:
            return PaymentResult(PaymentState.DECLINED, reference, decline_code=self.decline_reason)
        return PaymentResult(PaymentState.AUTHORIZED, reference, request.amount_minor)

    def capture(self, idempotency_key: str, reference: str, amount_minor: int) -> PaymentResult:
        self.calls.append(("capture", idempotency_key, amount_minor, 0))
        if self.capture_refused:
            return PaymentResult(PaymentState.FAILED, reference, message="authorisation expired")
        return PaymentResult(PaymentState.CAPTURED, reference, amount_minor, amount_minor)

    def cancel(self, idempotency_key: str, reference: str) -> PaymentResult:
        self.calls.append(("cancel", idempotency_key, 0, 0))
        return PaymentResult(PaymentState.CANCELED, reference)

    def refund(
        self, idempotency_key: str, reference: str, amount_minor: int, reason: str | None
    ) -> RefundResult:
        self.calls.append(("refund", idempotency_key, amount_minor, 0))
        return RefundResult(True, f"re_fake_{idempotency_key}")

    def retrieve(self, reference: str) -> PaymentResult:
        return PaymentResult(PaymentState.AUTHORIZED, reference)

    def webhook_action(self, body: bytes, headers: Mapping[str, str]) -> WebhookAction:
        raise NotImplementedError("the fake provider sends no webhooks")


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
