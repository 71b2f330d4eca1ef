"""Order processing: advance an order through its steps (start, charge, fulfil, complete).
The SQS Lambda handler and the Fargate worker reach it through `entrypoints.consumer` only.

`process_order` takes its dependencies (`deps`, see processor/bootstrap.py): the consumer
passes none and gets the production wiring, unit tests pass fakes."""

from __future__ import annotations

import dataclasses
import logging
import time
from collections.abc import Callable
from datetime import UTC, datetime
from uuid import UUID

from db.repository import OrderRow, PaymentMove, PaymentRow, PaymentStart, Transition
from processor import metrics
from processor.adapters.payments.base import (
    Authorization,
    PaymentResult,
    PaymentState,
    TransientPaymentError,
)
from processor.bootstrap import Dependencies, dependencies
from processor.domain.model import Status, check_transition, is_final
from processor.domain.money import to_minor
from processor.domain.payment import PaymentStatus, authorize_key, capture_key
from processor.observability import emit_metric
from processor.payments import service as payment_ops

log = logging.getLogger(__name__)


class UnknownOrder(Exception):
    """A queue message names an order that does not exist (poison message)."""


class InconsistentPayment(Exception):
    """The saved payment contradicts the order's status (`admin check` reports it too); the
    message is retried, then dead-lettered, instead of looping."""


def _now() -> datetime:
    return datetime.now(UTC)


def process_order(order_id: UUID, deps: Dependencies | None = None) -> Status:
    """Advance an order to a final state, one committed step at a time.

    Safe under redelivery and concurrency: each step is a guarded update, so a repeated or
    racing call continues from the saved status and never repeats a step.
    Raises UnknownOrder (poison) or TransientPaymentError (retry later).
    """
    deps = deps or dependencies()
    with deps.uow() as uow:
        current = uow.orders.get_status(order_id)
    if current is None:
        raise UnknownOrder(f"order {order_id} does not exist")
    status = Status(current)
    try:
        while not is_final(status):
            started = time.monotonic()
            previous, status = status, STEPS[status](order_id, deps)
            elapsed_ms = (time.monotonic() - started) * 1000
            log.info("step %s -> %s", previous, status, extra={"duration_ms": round(elapsed_ms)})
            emit_metric(metrics.STEP_LATENCY, elapsed_ms, step=previous.value)
    finally:
        deps.publisher.publish_notifications(order_id)
    return status


def _move(deps: Dependencies, order_id: UUID, current: Status, target: Status) -> Status:
    check_transition(current, target)
    with deps.uow() as uow:
        note_id = uow.orders.transition(Transition(order_id, [current.value], target.value, _now()))
        if note_id is None:
            saved = uow.orders.get_status(order_id)
            return Status(saved) if saved else current
        uow.commit()
    return target


def _start_processing(order_id: UUID, deps: Dependencies) -> Status:
    return _move(deps, order_id, Status.PENDING, Status.PROCESSING)


def _charge(order_id: UUID, deps: Dependencies) -> Status:
    """Authorise the order's total, with no database transaction open during the provider
    call: commit the intent (the payment row, AUTHORIZING, which also closes the cancel
    window), call the provider, then commit the outcome with the status change.

    A crash or a concurrent delivery between the two commits finds the intent and repeats the
    call under the same idempotency key, which the provider answers as before (one
    PaymentIntent per order); the guarded writes let only one answer be recorded.
    """
    with deps.uow() as uow:
        order = uow.orders.get(order_id)
        if order is None or order.status != Status.PROCESSING:
            return Status(order.status) if order else Status.PROCESSING
        payment = uow.orders.start_payment(
            PaymentStart(
                order_id,
                deps.payments.identifier,
                to_minor(order.total_amount, order.currency),
                authorize_key(order_id),
                _now(),
            )
        )
        uow.commit()
    if payment is None:
        return _saved(deps, order_id, Status.PROCESSING)
    if payment.status == PaymentStatus.AUTHORIZING:
        return _authorize(deps, order, payment)
    return _record_authorization(deps, order_id, None)


def _authorize(deps: Dependencies, order: OrderRow, payment: PaymentRow) -> Status:
    """Call the provider (retrying transient errors in-process, no transaction open) and
    record its answer with the status change it causes."""
    request = Authorization(
        authorize_key(order.order_id),
        str(order.order_id),
        payment.amount_minor,
        order.currency,
        order.payment_method,
        order.customer_email,
        payment.attempts,
    )
    try:
        result, attempts = _with_retries(deps, request)
    except TransientPaymentError:
        with deps.uow() as uow:
            uow.payments.record_attempts(order.order_id, deps.settings.payment_retry_attempts)
            uow.commit()
        raise
    approved = result.state == PaymentState.AUTHORIZED
    return _record_authorization(
        deps,
        order.order_id,
        PaymentMove(
            order.order_id,
            [PaymentStatus.AUTHORIZING],
            PaymentStatus.AUTHORIZED if approved else PaymentStatus.DECLINED,
            provider_ref=result.reference,
            authorized_minor=result.amount_authorized if approved else None,
            decline_reason=None if approved else _decline_reason(result),
            outcome="CHARGED" if approved else "DECLINED",
            add_attempts=attempts,
        ),
    )


def _decline_reason(result: PaymentResult) -> str:
    """The history message's reason: the decline code, or what the provider needs instead."""
    if result.state == PaymentState.REQUIRES_ACTION:
        return "authentication_required (the card needs customer authentication, 3-D Secure)"
    return result.decline_code or result.message or "declined"


def _record_authorization(deps: Dependencies, order_id: UUID, answer: PaymentMove | None) -> Status:
    """Record the provider's answer (when there is one) and move PROCESSING on accordingly, in
    one transaction; with `answer` None, move on from the answer an earlier try recorded."""
    with deps.uow() as uow:
        payment = uow.payments.move(answer) if answer is not None else None
        if payment is None:  # no answer to record, or another try recorded one first
            payment = uow.payments.get(order_id)
        if payment is None or payment.status == PaymentStatus.AUTHORIZING:
            return Status.PROCESSING  # another try is deciding; its delivery moves the order on
        approved = payment.status != PaymentStatus.DECLINED
        target = Status.PAYMENT_CONFIRMED if approved else Status.PAYMENT_FAILED
        reason = None if approved else payment.decline_reason
        note_id = uow.orders.transition(
            Transition(order_id, [Status.PROCESSING.value], target.value, _now(), reason)
        )
        saved = target.value if note_id is not None else uow.orders.get_status(order_id)
        uow.commit()
    if note_id is not None and not approved:
        emit_metric(metrics.PAYMENT_DECLINES)
    return Status(saved) if saved else target


def _with_retries(deps: Dependencies, request: Authorization) -> tuple[PaymentResult, int]:
    """Retry transient errors a few times with backoff; the sleeps hold no database lock."""
    config = deps.settings
    for attempt in range(config.payment_retry_attempts):
        try:
            tried = dataclasses.replace(request, attempt=request.attempt + attempt)
            return deps.payments.authorize(tried), attempt + 1
        except TransientPaymentError:
            if attempt + 1 == config.payment_retry_attempts:
                raise
            time.sleep(config.payment_retry_base_seconds * 2**attempt)
    raise AssertionError("unreachable")


def _saved(deps: Dependencies, order_id: UUID, fallback: Status) -> Status:
    with deps.uow() as uow:
        saved = uow.orders.get_status(order_id)
    return Status(saved) if saved else fallback


def _fulfil(order_id: UUID, deps: Dependencies) -> Status:
    """Capture, then ship: nothing is fulfilled unpaid. The capture intent (CAPTURING) is
    committed first; it and a cancel's void intent exclude each other on the payment row, so
    an authorisation is never both captured and voided. A void intent found here (a cancel
    that crashed after committing it) is finished instead."""
    if deps.settings.fulfilment_delay_seconds:
        time.sleep(deps.settings.fulfilment_delay_seconds)
    with deps.uow() as uow:
        payment = uow.payments.move(
            PaymentMove(
                order_id,
                [PaymentStatus.AUTHORIZED, PaymentStatus.CAPTURING],
                PaymentStatus.CAPTURING,
                order_statuses=[Status.PAYMENT_CONFIRMED.value],
                capture_key=capture_key(order_id),
            )
        )
        if payment is None:
            payment = uow.payments.get(order_id)
        uow.commit()
    if payment is not None and payment.status == PaymentStatus.VOIDING:
        return payment_ops.finish_void(deps, payment)
    if payment is not None and payment.status == PaymentStatus.CAPTURED:
        # Charged in one step before migration 0004 (an order in flight during the deploy).
        return _move(deps, order_id, Status.PAYMENT_CONFIRMED, Status.FULFILLED)
    if payment is None or payment.status != PaymentStatus.CAPTURING:
        saved = _saved(deps, order_id, Status.PAYMENT_CONFIRMED)
        if saved == Status.PAYMENT_CONFIRMED:  # would loop: a payment that contradicts it
            raise InconsistentPayment(
                f"order {order_id} is PAYMENT_CONFIRMED with payment"
                f" {payment.status if payment else 'none'}"
            )
        return saved
    result = payment_ops.call_transiently(
        lambda: deps.payments.capture(
            capture_key(order_id), payment.provider_ref or "", payment.authorized_minor
        )
    )
    captured = result.state == PaymentState.CAPTURED
    target = Status.FULFILLED if captured else Status.PAYMENT_FAILED
    reason = None if captured else f"capture refused: {result.message or result.state.lower()}"
    with deps.uow() as uow:
        uow.payments.move(
            PaymentMove(
                order_id,
                [PaymentStatus.CAPTURING],
                PaymentStatus.CAPTURED if captured else PaymentStatus.CAPTURE_FAILED,
                captured_minor=result.amount_captured if captured else None,
                failure_message=reason,
            )
        )
        note_id = uow.orders.transition(
            Transition(order_id, [Status.PAYMENT_CONFIRMED.value], target.value, _now(), reason)
        )
        if note_id is None:
            current = uow.orders.get_status(order_id)
            return Status(current) if current else Status.PAYMENT_CONFIRMED
        uow.commit()
    return target


def _complete(order_id: UUID, deps: Dependencies) -> Status:
    if deps.settings.completion_delay_seconds:
        time.sleep(deps.settings.completion_delay_seconds)
    return _move(deps, order_id, Status.FULFILLED, Status.COMPLETED)


# What the processor does in each non-final status.
STEPS: dict[Status, Callable[[UUID, Dependencies], Status]] = {
    Status.PENDING: _start_processing,
    Status.PROCESSING: _charge,
    Status.PAYMENT_CONFIRMED: _fulfil,
    Status.FULFILLED: _complete,
}
