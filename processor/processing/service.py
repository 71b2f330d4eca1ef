"""Order processing: advance an order through its steps (start, charge, fulfil, complete).
The SQS Lambda handler and the Fargate worker reach it through `entrypoints.consumer` only.

`process_order` takes its dependencies (`deps`, see processor/bootstrap.py): the consumer
passes none and gets the production wiring, unit tests pass fakes."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from datetime import UTC, datetime
from uuid import UUID

from db.repository import OrderRow, Transition
from processor import metrics
from processor.adapters.payments import ChargeResult, TransientPaymentError
from processor.bootstrap import Dependencies, dependencies
from processor.domain.model import Status, check_transition, is_final
from processor.observability import emit_metric

log = logging.getLogger(__name__)


class UnknownOrder(Exception):
    """A queue message names an order that does not exist (poison message)."""


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
    """Charge once per order. The order row stays locked from payment start to the recorded
    outcome, so a concurrent delivery waits instead of calling the provider a second time, and
    a cancel arriving meanwhile sees the payment and is refused."""
    config = deps.settings
    with deps.uow() as uow:
        payment = uow.orders.start_payment(order_id, _now())
        if payment is None:
            saved = uow.orders.get_status(order_id)
            return Status(saved) if saved else Status.PROCESSING
        if payment.outcome == "PENDING":
            order = uow.orders.get(order_id)
            assert order is not None
            try:
                result, attempts = _charge_with_retries(deps, order, payment.attempts)
            except TransientPaymentError:
                uow.payments.record_attempts(order_id, config.payment_retry_attempts)
                uow.commit()
                raise
            uow.payments.record_attempts(order_id, attempts)
            uow.payments.record_outcome(
                order_id,
                "CHARGED" if result.approved else "DECLINED",
                result.reference,
                result.decline_reason,
            )
        else:
            result = ChargeResult(
                payment.outcome == "CHARGED", payment.provider_ref, payment.decline_reason
            )
        target = Status.PAYMENT_CONFIRMED if result.approved else Status.PAYMENT_FAILED
        note_id = uow.orders.transition(
            Transition(
                order_id, [Status.PROCESSING.value], target.value, _now(), result.decline_reason
            )
        )
        if note_id is None:
            saved = uow.orders.get_status(order_id)
            return Status(saved) if saved else Status.PROCESSING
        uow.commit()
    if not result.approved:
        emit_metric(metrics.PAYMENT_DECLINES)
    return target


def _charge_with_retries(
    deps: Dependencies, order: OrderRow, previous_attempts: int
) -> tuple[ChargeResult, int]:
    config, provider = deps.settings, deps.payments
    for attempt in range(config.payment_retry_attempts):
        try:
            result = provider.charge(
                f"order-{order.order_id}",
                order.total_amount,
                order.customer_email,
                previous_attempts + attempt,
            )
            return result, attempt + 1
        except TransientPaymentError:
            if attempt + 1 == config.payment_retry_attempts:
                raise
            time.sleep(config.payment_retry_base_seconds * 2**attempt)
    raise AssertionError("unreachable")


def _fulfil(order_id: UUID, deps: Dependencies) -> Status:
    if deps.settings.fulfilment_delay_seconds:
        time.sleep(deps.settings.fulfilment_delay_seconds)
    return _move(deps, order_id, Status.PAYMENT_CONFIRMED, Status.FULFILLED)


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
