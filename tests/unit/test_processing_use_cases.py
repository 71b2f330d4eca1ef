"""Order processing driven through fakes: the steps, the charge and its retries, redelivery.
The same guarantees on PostgreSQL and SQS are in tests/integration/test_processing*.py."""

from __future__ import annotations

import dataclasses
from decimal import Decimal
from uuid import UUID, uuid4

import pytest

from processor.adapters.payments.base import TransientPaymentError
from processor.api.schemas import CreateOrderRequest
from processor.domain.model import Status
from processor.orders import service as orders
from processor.processing import service as processing
from tests.unit.fakes import FakeProvider, FakeSystem

LIFECYCLE = ["PENDING", "PROCESSING", "PAYMENT_CONFIRMED", "FULFILLED", "COMPLETED"]


def created(fake: FakeSystem) -> UUID:
    order = CreateOrderRequest.model_validate(
        {
            "customer_email": "ada@example.com",
            "customer_name": "Ada",
            "items": [{"product_name": "Widget", "quantity": 1, "unit_price": Decimal("10.00")}],
        }
    )
    return UUID(orders.create_order(order, deps=fake.deps)[0]["order_id"])


def test_an_approved_order_walks_every_step_to_completed_and_is_charged_once():
    fake = FakeSystem()
    order_id = created(fake)

    assert processing.process_order(order_id, deps=fake.deps) == Status.COMPLETED

    assert fake.store.statuses(order_id) == LIFECYCLE
    assert [(op, key, amount) for op, key, amount, _ in fake.provider.calls] == [
        ("authorize", f"order-{order_id}-authorize", 1000),
        ("capture", f"order-{order_id}-capture", 1000),
    ]
    payment = fake.store.payments[order_id]
    assert (payment.status, payment.authorized_minor, payment.captured_minor) == (
        "CAPTURED",
        1000,
        1000,
    )
    assert fake.publisher.notified == [order_id]


def test_a_redelivered_message_for_a_completed_order_changes_nothing():
    fake = FakeSystem()
    order_id = created(fake)
    processing.process_order(order_id, deps=fake.deps)

    assert processing.process_order(order_id, deps=fake.deps) == Status.COMPLETED

    assert fake.store.statuses(order_id) == LIFECYCLE
    assert len(fake.provider.calls) == 2  # one authorisation, one capture


def test_a_declined_payment_ends_the_order_as_payment_failed_with_the_reason():
    fake = FakeSystem(provider=FakeProvider(decline_reason="card_declined"))
    order_id = created(fake)

    assert processing.process_order(order_id, deps=fake.deps) == Status.PAYMENT_FAILED

    assert fake.store.statuses(order_id) == ["PENDING", "PROCESSING", "PAYMENT_FAILED"]
    assert fake.store.history[order_id][-1].reason == "card_declined"
    assert fake.store.payments[order_id].status == "DECLINED"
    assert [op for op, *_ in fake.provider.calls] == ["authorize"]


def test_a_transient_provider_error_is_retried_within_the_delivery_with_the_same_key():
    fake = FakeSystem(provider=FakeProvider(transient_failures=2))
    order_id = created(fake)

    assert processing.process_order(order_id, deps=fake.deps) == Status.COMPLETED

    assert [(key, attempt) for op, key, _, attempt in fake.provider.calls if op == "authorize"] == [
        (f"order-{order_id}-authorize", 0),
        (f"order-{order_id}-authorize", 1),
        (f"order-{order_id}-authorize", 2),
    ]
    assert fake.store.payments[order_id].attempts == 3


def test_a_provider_still_failing_after_every_retry_leaves_the_order_processing_for_later():
    fake = FakeSystem(provider=FakeProvider(transient_failures=3))
    order_id = created(fake)

    with pytest.raises(TransientPaymentError):
        processing.process_order(order_id, deps=fake.deps)

    assert fake.store.orders[order_id].status == "PROCESSING"
    assert fake.store.payments[order_id].attempts == 3  # committed although the charge failed
    assert fake.publisher.notified == [order_id]  # PROCESSING was saved: its email goes out

    assert processing.process_order(order_id, deps=fake.deps) == Status.COMPLETED
    authorisations = [call for call in fake.provider.calls if call[0] == "authorize"]
    assert authorisations[-1][3] == 3  # the redelivery continues the attempt count


def test_a_message_for_an_order_that_does_not_exist_is_poison():
    with pytest.raises(processing.UnknownOrder):
        processing.process_order(uuid4(), deps=FakeSystem().deps)


def test_a_capture_refused_for_good_fails_the_payment_and_nothing_is_fulfilled():
    fake = FakeSystem(provider=FakeProvider(capture_refused=True))
    order_id = created(fake)

    assert processing.process_order(order_id, deps=fake.deps) == Status.PAYMENT_FAILED

    assert fake.store.statuses(order_id) == [
        "PENDING",
        "PROCESSING",
        "PAYMENT_CONFIRMED",
        "PAYMENT_FAILED",
    ]
    assert fake.store.history[order_id][-1].reason == "capture refused: authorisation expired"
    assert fake.store.payments[order_id].status == "CAPTURE_FAILED"
    assert fake.store.payments[order_id].captured_minor == 0


def test_an_order_charged_in_one_step_before_the_migration_is_fulfilled_without_a_capture():
    fake = FakeSystem()
    order_id = created(fake)
    for step in (Status.PENDING, Status.PROCESSING):
        processing.STEPS[step](order_id, fake.deps)
    fake.store.payments[order_id] = dataclasses.replace(
        fake.store.payments[order_id], status="CAPTURED", captured_minor=1000
    )

    assert processing.process_order(order_id, deps=fake.deps) == Status.COMPLETED

    assert [op for op, *_ in fake.provider.calls] == ["authorize"]


def test_a_payment_that_contradicts_payment_confirmed_is_an_error_not_a_loop():
    fake = FakeSystem()
    order_id = created(fake)
    for step in (Status.PENDING, Status.PROCESSING):
        processing.STEPS[step](order_id, fake.deps)
    fake.store.payments[order_id] = dataclasses.replace(
        fake.store.payments[order_id], status="DECLINED"
    )

    with pytest.raises(processing.InconsistentPayment):
        processing.process_order(order_id, deps=fake.deps)
