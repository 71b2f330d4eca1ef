"""Bring our records to what the payment provider says, where that is safe.

Shared by the webhook handlers (one event) and `admin reconcile --fix` (one finding). Each
function runs inside the caller's transaction, locks the payment row first (as every payment
step does), and answers an `EventOutcome`: it only ever moves a payment or an order forward
along its lifecycle, records money that already moved at the provider, and never calls the
provider itself. Whatever would need a guess (captured money on a cancelled order, a dispute)
is a DISAGREEMENT for an operator.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from uuid import UUID, uuid4

from db.repository import PaymentMove, RefundRow, Transition
from processor.domain.model import REFUNDABLE_STATUSES, Status
from processor.domain.payment import PaymentStatus
from processor.domain.reconciliation import EventOutcome

# How far each payment status is along its lifecycle: an event describing an earlier point is
# stale news and changes nothing.
_PROGRESS = {
    PaymentStatus.AUTHORIZING: 0,
    PaymentStatus.DECLINED: 1,
    PaymentStatus.AUTHORIZED: 1,
    PaymentStatus.CAPTURING: 2,
    PaymentStatus.VOIDING: 2,
    PaymentStatus.CAPTURED: 3,
    PaymentStatus.CAPTURE_FAILED: 3,
    PaymentStatus.VOIDED: 3,
}
SHIPPED_OR_SHIPPING = frozenset({Status.PAYMENT_CONFIRMED, Status.FULFILLED, Status.COMPLETED})
REFUND_REASON = "refunded at the payment provider"


@dataclass(frozen=True)
class Recorded:
    """An outcome, why, and whether an order status changed (its notification to publish)."""

    outcome: EventOutcome
    detail: str | None = None
    notified: bool = False
    order_id: UUID | None = None


def _now() -> datetime:
    return datetime.now(UTC)


def progress(status: str) -> int:
    return _PROGRESS.get(PaymentStatus(status), 0)


def record_capture(uow: Any, order_id: UUID, captured_minor: int) -> Recorded:
    """The provider captured: the payment is CAPTURED and a PAYMENT_CONFIRMED order moves on
    to FULFILLED, as the processor's capture step would have done (capture is fulfilment).
    Captured money on an order that is not being shipped is an operator's decision."""
    payment = uow.payments.get(order_id, for_update=True)
    status = uow.orders.get_status(order_id)
    if payment is None or status is None:
        return Recorded(EventOutcome.UNKNOWN_ORDER, "no payment recorded for this order")
    if payment.status == PaymentStatus.CAPTURED:
        if payment.captured_minor != captured_minor:
            return Recorded(EventOutcome.DISAGREEMENT, f"captured {captured_minor} at the "
                            f"provider, {payment.captured_minor} recorded")
        return Recorded(EventOutcome.UNCHANGED)
    if Status(status) not in SHIPPED_OR_SHIPPING or payment.status not in (
        PaymentStatus.AUTHORIZED, PaymentStatus.CAPTURING
    ):
        return Recorded(EventOutcome.DISAGREEMENT, f"captured {captured_minor} at the provider "
                        f"but the order is {status} and its payment {payment.status}")
    uow.payments.move(PaymentMove(
        order_id, [payment.status], PaymentStatus.CAPTURED, captured_minor=captured_minor))
    notified = False
    if status == Status.PAYMENT_CONFIRMED:
        note = uow.orders.transition(Transition(
            order_id, [Status.PAYMENT_CONFIRMED.value], Status.FULFILLED.value, _now(),
            "capture recorded from the payment provider"))
        notified = note is not None
    return Recorded(EventOutcome.APPLIED, f"capture of {captured_minor} recorded", notified)


def record_void(uow: Any, order_id: UUID) -> Recorded:
    """The provider voided the authorisation. Recorded when the order is cancelled or failed
    (the void we wanted); on an order still counting on it, the authorisation is lost."""
    payment = uow.payments.get(order_id, for_update=True)
    status = uow.orders.get_status(order_id)
    if payment is None or status is None:
        return Recorded(EventOutcome.UNKNOWN_ORDER, "no payment recorded for this order")
    if payment.status == PaymentStatus.VOIDED:
        return Recorded(EventOutcome.UNCHANGED)
    if payment.status in (PaymentStatus.CAPTURED, PaymentStatus.CAPTURE_FAILED):
        return Recorded(EventOutcome.STALE, f"payment already {payment.status}")
    if status in (Status.CANCELLED, Status.PAYMENT_FAILED) and payment.status in (
        PaymentStatus.AUTHORIZED, PaymentStatus.VOIDING
    ):
        uow.payments.move(PaymentMove(order_id, [payment.status], PaymentStatus.VOIDED))
        return Recorded(EventOutcome.APPLIED, "void recorded")
    return Recorded(EventOutcome.DISAGREEMENT, f"the provider voided the authorisation of a "
                    f"{status} order (payment {payment.status})")


def record_refund(
    uow: Any, order_id: UUID, reference: str, amount_minor: int, currency: str
) -> Recorded:
    """A refund the provider made (its dashboard, or ours whose answer we lost): added to the
    order's refunds once (by the provider's refund id) and to the refunded total; the order
    becomes REFUNDED when everything captured is refunded."""
    payment = uow.payments.get(order_id, for_update=True)
    if payment is None:
        return Recorded(EventOutcome.UNKNOWN_ORDER, "no payment recorded for this order")
    if any(r.provider_ref == reference for r in uow.payments.refunds(order_id)):
        return Recorded(EventOutcome.UNCHANGED)
    if payment.status != PaymentStatus.CAPTURED or currency.lower() != payment.currency:
        return Recorded(EventOutcome.DISAGREEMENT, f"refund {reference} of {amount_minor} "
                        f"{currency} at the provider; payment {payment.status} in "
                        f"{payment.currency}")
    if payment.refunded_minor + amount_minor > payment.captured_minor:
        return Recorded(EventOutcome.DISAGREEMENT, f"refund {reference} of {amount_minor} "
                        f"exceeds what is left of the {payment.captured_minor} captured")
    now = _now()
    refund_id = uuid4()
    uow.payments.add_refund(RefundRow(
        refund_id, order_id, amount_minor, payment.currency, REFUND_REASON, "PENDING",
        f"provider-{reference}", reference, None, None, None, now, now))
    saved = uow.payments.finish_refund(refund_id, True, reference, None)
    notified = False
    if saved is not None and 0 < saved.captured_minor == saved.refunded_minor:
        note = uow.orders.transition(Transition(
            order_id, [s.value for s in REFUNDABLE_STATUSES], Status.REFUNDED.value, now,
            REFUND_REASON))
        notified = note is not None
    return Recorded(EventOutcome.APPLIED, f"refund {reference} of {amount_minor} recorded",
                    notified)


def compare_progress(uow: Any, order_id: UUID, reached: PaymentStatus) -> Recorded:
    """For events we record nothing from (an authorisation, a failure): unchanged when we are
    there already, stale when we are further, and left to the processor (which repeats its
    call under the same key and records the answer) when it is still deciding."""
    payment = uow.payments.get(order_id)
    if payment is None:
        return Recorded(EventOutcome.UNKNOWN_ORDER, "no payment recorded for this order")
    if payment.status == reached:
        return Recorded(EventOutcome.UNCHANGED)
    if progress(payment.status) > progress(reached):
        return Recorded(EventOutcome.STALE, f"payment already {payment.status}")
    if payment.status == PaymentStatus.AUTHORIZING:
        return Recorded(EventOutcome.UNCHANGED, "the processor records its own answer")
    return Recorded(EventOutcome.DISAGREEMENT,
                    f"the provider says {reached}, we have {payment.status}")
