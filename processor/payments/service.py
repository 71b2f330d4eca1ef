"""Voids and refunds: the payment operations a customer's request starts.

Like the processor's authorise and capture, each commits its intent, calls the provider with
no database transaction open, and commits the answer; the intent's idempotency key makes a
repeated call (a retried request, a redelivery finishing a crashed cancel) harmless.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any, TypeVar
from uuid import UUID, uuid4

from db.repository import PaymentMove, PaymentRow, RefundRow, Transition
from processor.adapters.payments.base import PaymentState, TransientPaymentError
from processor.api.views import refund_view
from processor.bootstrap import Dependencies, dependencies
from processor.domain.errors import (
    IdempotencyKeyReused,
    InvalidOrderState,
    OrderNotFound,
    PaymentProviderUnavailable,
    RefundExceedsCaptured,
    ValidationFailed,
)
from processor.domain.model import REFUNDABLE_STATUSES, Status
from processor.domain.money import UnsupportedAmount, to_minor
from processor.domain.payment import PaymentStatus, RefundStatus, refund_key, void_key
from processor.jsonutil import dumps

Result = TypeVar("Result")
CANCEL_REASON = "cancelled by customer"


def _now() -> datetime:
    return datetime.now(UTC)


def call_transiently(call: Callable[[], Result], attempts: int = 3) -> Result:
    """A provider call retried on transient errors (short backoff, no transaction open);
    the last error propagates, and the caller's intent stays for the next try."""
    for attempt in range(attempts):
        try:
            return call()
        except TransientPaymentError:
            if attempt + 1 == attempts:
                raise
            time.sleep(0.05 * 2**attempt)
    raise AssertionError("unreachable")


def void_and_cancel(order_id: UUID, deps: Dependencies) -> bool:
    """Cancel a PAYMENT_CONFIRMED order by voiding its authorisation. False when the capture
    claimed the payment first (then nothing is voided, and the order ships)."""
    with deps.uow() as uow:
        payment = uow.payments.move(
            PaymentMove(
                order_id,
                [PaymentStatus.AUTHORIZED, PaymentStatus.VOIDING],
                PaymentStatus.VOIDING,
                order_statuses=[Status.PAYMENT_CONFIRMED.value],
                void_key=void_key(order_id),
            )
        )
        uow.commit()
    if payment is None:
        return False
    try:
        finish_void(deps, payment)
    except TransientPaymentError:
        raise PaymentProviderUnavailable(
            "the payment provider did not answer; the cancellation completes on retry",
            headers={"Retry-After": "5"},
        ) from None
    return True


def finish_void(deps: Dependencies, payment: PaymentRow) -> Status:
    """Void a payment whose void intent is committed, then record VOIDED and CANCELLED."""
    result = call_transiently(
        lambda: deps.payments.cancel(void_key(payment.order_id), payment.provider_ref or "")
    )
    if result.state != PaymentState.CANCELED:  # e.g. captured by someone outside this system
        raise TransientPaymentError(f"the provider did not void the payment: {result.state}")
    with deps.uow() as uow:
        uow.payments.move(
            PaymentMove(payment.order_id, [PaymentStatus.VOIDING], PaymentStatus.VOIDED)
        )
        note_id = uow.orders.transition(
            Transition(
                payment.order_id,
                [Status.PAYMENT_CONFIRMED.value],
                Status.CANCELLED.value,
                _now(),
                reason=f"{CANCEL_REASON} (payment authorisation voided)",
            )
        )
        saved = uow.orders.get_status(payment.order_id)
        uow.commit()
    if note_id is not None:
        deps.publisher.publish_notifications(payment.order_id)
    return Status(saved) if saved else Status.CANCELLED


@dataclass(frozen=True)
class RefundRequest:
    """A validated refund request: `amount` None means everything not yet refunded."""

    amount: Decimal | None = None
    reason: str | None = None


def create_refund(
    order_id: UUID,
    request: RefundRequest,
    idempotency_key: str | None = None,
    deps: Dependencies | None = None,
) -> tuple[dict[str, Any], bool]:
    """Refund part or all of a captured payment; returns (refund view, replayed).

    The refund row (PENDING, with its own provider key) is committed under the payment row's
    lock, which serialises concurrent refunds, so their total never exceeds the capture; the
    provider is called after that commit. A repeated request with the same Idempotency-Key
    finds the row and, if it is still PENDING (a crash or provider outage in between),
    finishes it under the same provider key.
    """
    deps = deps or dependencies()
    request_hash = hashlib.sha256(
        dumps(
            {"order_id": str(order_id), "amount": request.amount, "reason": request.reason}
        ).encode()
    ).hexdigest()
    with deps.uow() as uow:
        earlier = uow.payments.refund_by_request_key(idempotency_key) if idempotency_key else None
        refund = earlier or _new_refund(uow, order_id, request, idempotency_key, request_hash)
        uow.commit()
        if refund is None:  # a concurrent request with this key committed first
            assert idempotency_key is not None
            refund = earlier = uow.payments.refund_by_request_key(idempotency_key)
            assert refund is not None
    replayed = earlier is not None
    if refund.request_hash != request_hash:
        raise IdempotencyKeyReused("this Idempotency-Key was used with a different refund request")
    if refund.status == RefundStatus.PENDING:
        refund = _finish_refund(deps, refund)
    return refund_view(refund), replayed


def _new_refund(
    uow: Any, order_id: UUID, request: RefundRequest, key: str | None, request_hash: str
) -> RefundRow | None:
    """The refund row, committed by the caller; None if a concurrent request took `key`."""
    status = uow.orders.get_status(order_id)
    if status is None:
        raise OrderNotFound(f"order {order_id} does not exist")
    payment = uow.payments.get(order_id, for_update=True)
    if key is not None and uow.payments.refund_by_request_key(key) is not None:
        return None  # a concurrent request with this key got the lock first
    if Status(status) not in REFUNDABLE_STATUSES or payment is None:
        raise InvalidOrderState(
            f"order is {status}; only a captured payment (FULFILLED or COMPLETED) is refunded",
            [{"field": "status", "message": status}],
        )
    pending_or_done = sum(
        r.amount_minor for r in uow.payments.refunds(order_id) if r.status != RefundStatus.FAILED
    )
    remaining = payment.captured_minor - pending_or_done
    try:
        amount = remaining if request.amount is None else to_minor(request.amount, payment.currency)
    except UnsupportedAmount as error:
        raise ValidationFailed(str(error), [{"field": "amount", "message": str(error)}]) from None
    if amount <= 0 or amount > remaining:
        raise RefundExceedsCaptured(
            "the refunds would exceed the captured amount"
            if amount > 0
            else "the amount must be greater than zero",
            [{"field": "amount", "message": f"at most {remaining} minor units remain"}],
        )
    now, refund_id = _now(), uuid4()
    refund = RefundRow(
        refund_id,
        order_id,
        amount,
        payment.currency,
        request.reason,
        RefundStatus.PENDING.value,
        refund_key(refund_id),
        None,
        None,
        key,
        request_hash,
        now,
        now,
    )
    return refund if uow.payments.add_refund(refund) else None


def _finish_refund(deps: Dependencies, refund: RefundRow) -> RefundRow:
    """Call the provider for a PENDING refund, record its answer and, when everything
    captured is refunded, move the order to REFUNDED (with its history, email, SNS event)."""
    with deps.uow() as uow:
        payment = uow.payments.get(refund.order_id)
    assert payment is not None
    try:
        result = call_transiently(
            lambda: deps.payments.refund(
                refund.provider_key, payment.provider_ref or "", refund.amount_minor, refund.reason
            )
        )
    except TransientPaymentError:
        raise PaymentProviderUnavailable(
            "the payment provider did not answer; retry with the same Idempotency-Key",
            headers={"Retry-After": "5"},
        ) from None
    with deps.uow() as uow:
        # The payment row first, as a new refund takes it: one lock order, no deadlock.
        uow.payments.get(refund.order_id, for_update=True)
        saved = uow.payments.finish_refund(
            refund.refund_id, result.succeeded, result.reference, result.message
        )
        note_id = None
        if saved is not None and 0 < saved.captured_minor == saved.refunded_minor:
            note_id = uow.orders.transition(
                Transition(
                    refund.order_id,
                    [s.value for s in REFUNDABLE_STATUSES],
                    Status.REFUNDED.value,
                    _now(),
                    reason=refund.reason,
                )
            )
        latest = next(
            r for r in uow.payments.refunds(refund.order_id) if r.refund_id == refund.refund_id
        )
        uow.commit()
    if note_id is not None:
        deps.publisher.publish_notifications(refund.order_id)
    return latest
