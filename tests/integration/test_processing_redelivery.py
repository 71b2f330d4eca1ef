"""At-least-once delivery: the same message twice in a row or at once, and a crash after any
step followed by a redelivery, all leave one lifecycle, one charge and one email per status."""

from __future__ import annotations

import json
import random
import threading
from decimal import Decimal
from typing import Any
from uuid import UUID

import pytest

from processor import bootstrap
from processor.adapters.aws import client
from processor.config import Settings
from processor.domain.model import Status
from processor.entrypoints.consumer import QueueMessage, handle_batch
from processor.orders import service as order_service
from processor.outbox import relay as outbox
from processor.processing import service as processing
from tests.helpers import (
    LIFECYCLE,
    BlockingProvider,
    emailed_statuses,
    history_of,
    order_request,
    payments_of,
    receive_all,
    status_of,
    wait_until,
)


class Crash(Exception):
    """Stands in for the process dying at a chosen point."""


pytestmark = pytest.mark.usefixtures("invariants_hold")


def _create_and_receive(system: dict[str, Any], email: str = "ada@example.com") -> QueueMessage:
    """Create an order and take its queue message, as a consumer would receive it."""
    order_service.create_order(order_request(email))
    (message,) = receive_all(system["ORDER_QUEUE_URL"])
    return QueueMessage.from_sqs(message)


def _order_id(message: QueueMessage) -> str:
    return json.loads(message.body)["order_id"]


def _assert_one_lifecycle(system: dict[str, Any], order_id: str, provider: Any) -> None:
    assert status_of(system["db"], order_id) == "COMPLETED"
    assert history_of(system["db"], order_id) == list(LIFECYCLE)
    assert [row[0] for row in payments_of(system["db"], order_id)] == ["CHARGED"]
    assert provider.charged_keys == {f"order-{order_id}-authorize"}
    assert emailed_statuses(system["AWS_ENDPOINT_URL"], order_id) == list(LIFECYCLE)


# --- Duplicates --------------------------------------------------------------------------------


def test_the_same_message_delivered_twice_in_a_row_runs_one_lifecycle(system, provider):
    message = _create_and_receive(system)
    first = handle_batch([message])
    second = handle_batch([message])  # e.g. the delete after the first delivery was lost
    assert len(first.done) == len(second.done) == 1
    _assert_one_lifecycle(system, _order_id(message), provider)
    assert len(provider.calls) == 1


def test_two_copies_of_a_message_in_one_batch_run_one_lifecycle(system, provider):
    message = _create_and_receive(system)
    for _ in range(2):  # the outbox relay is at least once: it may send a record again
        client("sqs").send_message(QueueUrl=system["ORDER_QUEUE_URL"], MessageBody=message.body)
    copies = [QueueMessage.from_sqs(m) for m in receive_all(system["ORDER_QUEUE_URL"])]
    assert len(copies) == 2
    outcome = handle_batch([message, *copies])
    assert len(outcome.done) == 3
    _assert_one_lifecycle(system, _order_id(message), provider)
    assert len(provider.calls) == 1


def test_two_consumers_handling_one_message_at_once_authorise_under_one_key_and_record_once(
    system,
):
    provider = BlockingProvider()
    bootstrap.set_payment_provider(provider)
    message = _create_and_receive(system)
    outcomes: list[Any] = []
    first = threading.Thread(target=lambda: outcomes.append(handle_batch([message])))
    second = threading.Thread(target=lambda: outcomes.append(handle_batch([message])))

    first.start()
    second.start()
    wait_until(lambda: provider.waiting == 2, what="both consumers to call the provider")
    provider.release.set()
    first.join(10)
    second.join(10)

    assert [len(o.done) for o in outcomes] == [1, 1]
    _assert_one_lifecycle(system, _order_id(message), provider)
    assert len(provider.calls) == 2  # both asked, under one key: one PaymentIntent


def test_many_simultaneous_deliveries_of_several_orders_leave_one_lifecycle_each(system, provider):
    messages = [_create_and_receive(system, f"customer{n}@example.com") for n in range(3)]
    deliveries = [m for m in messages for _ in range(6)]
    random.Random(4).shuffle(deliveries)
    start = threading.Barrier(len(deliveries))
    results: list[str] = []

    def deliver(message: QueueMessage) -> None:
        start.wait(10)
        results.append(processing.process_order(UUID(_order_id(message))).value)

    threads = [threading.Thread(target=deliver, args=(m,)) for m in deliveries]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)

    assert results == ["COMPLETED"] * len(deliveries)
    # Concurrent deliveries may each ask; they ask under the order's one key.
    assert {key for key, _ in provider.calls} == {
        f"order-{_order_id(m)}-authorize" for m in messages
    }
    for message in messages:
        order_id = _order_id(message)
        assert history_of(system["db"], order_id) == list(LIFECYCLE)
        assert sorted(emailed_statuses(system["AWS_ENDPOINT_URL"], order_id)) == sorted(LIFECYCLE)


# --- Crashes -----------------------------------------------------------------------------------


@pytest.mark.parametrize("step", ["PENDING", "PROCESSING", "PAYMENT_CONFIRMED", "FULFILLED"])
def test_a_crash_right_after_a_step_commits_is_finished_by_the_redelivery(
    system, provider, monkeypatch, step
):
    message = _create_and_receive(system)
    order_id = _order_id(message)
    real_step = processing.STEPS[Status(step)]
    crashes = []

    def step_then_crash(order: UUID, config: Settings) -> Status:
        reached = real_step(order, config)
        if not crashes:
            crashes.append(reached)
            raise Crash(f"died after reaching {reached}")
        return reached

    monkeypatch.setitem(processing.STEPS, Status(step), step_then_crash)
    with monkeypatch.context() as dying:
        # A dead process publishes nothing after its last commit.
        dying.setattr(outbox, "publish_quietly", lambda **_: None)
        with pytest.raises(Crash):
            processing.process_order(UUID(order_id))
    saved = history_of(system["db"], order_id)
    assert saved == list(LIFECYCLE[: LIFECYCLE.index(step) + 2])
    assert emailed_statuses(system["AWS_ENDPOINT_URL"], order_id) == []

    outcome = handle_batch([message])  # SQS delivers the unacknowledged message again

    assert len(outcome.done) == 1
    _assert_one_lifecycle(system, order_id, provider)
    assert len(provider.calls) == 1


def test_a_crash_between_the_charge_and_its_commit_repeats_the_call_with_the_same_key(
    system, provider
):
    message = _create_and_receive(system)
    order_id = _order_id(message)
    authorize = provider.authorize

    def authorize_then_crash(*args: Any) -> Any:
        result = authorize(*args)
        if len(provider.calls) == 1:
            raise Crash("died before the payment outcome was committed")
        return result

    provider.authorize = authorize_then_crash  # type: ignore[method-assign]
    first = handle_batch([message])
    assert first.failed  # retried later, not acknowledged
    assert status_of(system["db"], order_id) == "PROCESSING"
    # The intent was committed before the call, its answer was not.
    assert payments_of(system["db"], order_id) == [("PENDING", Decimal("125.97"), None, None, 0)]

    second = handle_batch([message])

    assert len(second.done) == 1
    _assert_one_lifecycle(system, order_id, provider)
    # The provider saw the same idempotency key twice and charged once.
    assert provider.calls == [
        (f"order-{order_id}-authorize", 0),
        (f"order-{order_id}-authorize", 0),
    ]
    reference = provider.authorizations[f"order-{order_id}-authorize"].reference
    assert payments_of(system["db"], order_id)[0][2] == reference
