"""Order processing end to end on real PostgreSQL and moto: the lifecycle with its emails and
events, payment declines, transient provider failures with retries and backoff, and the DLQ."""

from __future__ import annotations

import json
from decimal import Decimal
from typing import Any
from uuid import UUID

import pytest

from processor.adapters.aws import client
from processor.adapters.payments.base import TransientPaymentError
from processor.entrypoints.consumer import QueueMessage, handle_batch
from processor.ops import dlq
from processor.orders import service as order_service
from processor.processing import service as processing
from tests.helpers import (
    LIFECYCLE,
    consume_once,
    count,
    emailed_statuses,
    history_of,
    order_request,
    payments_of,
    queue_depth,
    receive_all,
    status_of,
    subscribe_tap,
    tapped_events,
)
from tests.integration.conftest import ORDER

pytestmark = pytest.mark.usefixtures("invariants_hold")


def _create(email: str = "ada@example.com") -> UUID:
    body, _ = order_service.create_order(order_request(email))
    return UUID(body["order_id"])


def _key(order_id: Any) -> str:
    return f"order-{order_id}-authorize"


# --- The happy path ---------------------------------------------------------------------------


def test_an_order_goes_through_every_status_once_with_one_email_and_event_each(
    api, system, provider
):
    every_event = subscribe_tap(system["NOTIFICATION_TOPIC_ARN"], "tap-all")
    completed_only = subscribe_tap(
        system["NOTIFICATION_TOPIC_ARN"], "tap-completed", {"status": ["COMPLETED"]}
    )

    status, created, _ = api.post("/orders", ORDER)
    assert status == 201
    order_id = created["order_id"]
    outcome = consume_once(system["ORDER_QUEUE_URL"])
    assert [json.loads(m.body)["order_id"] for m in outcome.done] == [order_id]
    assert outcome.failed == []

    status, order = api.get(f"/orders/{order_id}")
    assert status == 200
    assert order["status"] == "COMPLETED"
    assert [(h["status"], h["message"]) for h in order["status_history"]] == [
        ("COMPLETED", "Order completed"),
        ("FULFILLED", "Order has been fulfilled"),
        ("PAYMENT_CONFIRMED", "Payment processed successfully"),
        ("PROCESSING", "Order is being processed"),
        ("PENDING", "Order created"),
    ]
    assert all(set(h) == {"status", "message", "created_at"} for h in order["status_history"])
    reference = provider.authorizations[_key(order_id)].reference
    assert reference
    assert payments_of(system["db"], order_id) == [
        ("CHARGED", Decimal("125.97"), reference, None, 1)
    ]
    assert provider.calls == [(_key(order_id), 0)]
    assert emailed_statuses(system["AWS_ENDPOINT_URL"], order_id) == list(LIFECYCLE)
    events = tapped_events(every_event)
    assert [status for status, _ in events] == list(LIFECYCLE)
    assert all(e["status"] == status and e["order_id"] == order_id for status, e in events)
    assert [status for status, _ in tapped_events(completed_only)] == ["COMPLETED"]
    assert queue_depth(system["ORDER_QUEUE_URL"]) == (0, 0)
    assert count(system["db"], "SELECT count(*) FROM outbox WHERE published_at IS NULL") == 0


def test_processing_a_finished_order_again_changes_nothing(system, provider):
    order_id = _create()
    assert processing.process_order(order_id) == "COMPLETED"
    assert processing.process_order(order_id) == "COMPLETED"
    assert history_of(system["db"], order_id) == list(LIFECYCLE)
    assert len(provider.calls) == 1
    assert emailed_statuses(system["AWS_ENDPOINT_URL"], order_id) == list(LIFECYCLE)


# --- Payment outcomes ---------------------------------------------------------------------------


def test_a_declined_payment_is_final_and_the_provider_is_called_once(system, provider):
    order_id = _create("ada+decline@example.com")
    messages = receive_all(system["ORDER_QUEUE_URL"])
    outcome = handle_batch([QueueMessage.from_sqs(m) for m in messages])
    assert len(outcome.done) == 1  # acknowledged: a decline is an answer, not a failure

    assert status_of(system["db"], order_id) == "PAYMENT_FAILED"
    assert history_of(system["db"], order_id) == ["PENDING", "PROCESSING", "PAYMENT_FAILED"]
    reason = count(
        system["db"],
        "SELECT count(*) FROM order_status_history WHERE order_id = %s"
        " AND status = 'PAYMENT_FAILED' AND reason = 'card_declined'",
        str(order_id),
    )
    assert reason == 1
    history = order_service.get_order(order_id)["status_history"]
    assert history[0]["message"] == "Payment declined: card_declined"
    reference = provider.authorizations[_key(order_id)].reference
    assert payments_of(system["db"], order_id) == [
        ("DECLINED", Decimal("125.97"), reference, "card_declined", 1)
    ]
    assert processing.process_order(order_id) == "PAYMENT_FAILED"  # a redelivery retries nothing
    assert provider.calls == [(_key(order_id), 0)]
    assert emailed_statuses(system["AWS_ENDPOINT_URL"], order_id) == [
        "PENDING",
        "PROCESSING",
        "PAYMENT_FAILED",
    ]


def test_a_flaky_provider_is_retried_within_one_delivery_with_the_same_key(system, provider):
    order_id = _create("ada+flaky@example.com")
    assert processing.process_order(order_id) == "COMPLETED"
    assert provider.calls == [(_key(order_id), 0), (_key(order_id), 1), (_key(order_id), 2)]
    assert provider.charged_keys == {_key(order_id)}
    assert [row[0] for row in payments_of(system["db"], order_id)] == ["CHARGED"]
    assert payments_of(system["db"], order_id)[0][4] == 3  # attempts


def test_a_flaky_provider_is_retried_on_redelivery_until_it_succeeds(system, configure, provider):
    configure(PAYMENT_RETRY_ATTEMPTS="1")
    order_id = _create("ada+flaky@example.com")
    queue = system["ORDER_QUEUE_URL"]

    receive_counts = []
    for _ in range(3):
        # Received with a 30 s visibility: it is back at once only because the consumer's
        # backoff (RETRY_VISIBILITY_BASE_SECONDS=0) makes a failed message visible again.
        (message,) = receive_all(queue, visibility=30)
        receive_counts.append(int(message["Attributes"]["ApproximateReceiveCount"]))
        outcome = handle_batch([QueueMessage.from_sqs(message)])
        if outcome.done:
            client("sqs").delete_message(QueueUrl=queue, ReceiptHandle=message["ReceiptHandle"])
            break
        assert status_of(system["db"], order_id) == "PROCESSING"

    assert receive_counts == [1, 2, 3]
    assert status_of(system["db"], order_id) == "COMPLETED"
    assert provider.calls == [(_key(order_id), attempt) for attempt in range(3)]
    assert payments_of(system["db"], order_id)[0][0::4] == ("CHARGED", 3)
    assert queue_depth(queue) == (0, 0)
    assert emailed_statuses(system["AWS_ENDPOINT_URL"], order_id) == list(LIFECYCLE)


def test_an_unavailable_provider_backs_off_then_the_message_lands_in_the_dlq(
    system, configure, provider
):
    configure(RETRY_VISIBILITY_BASE_SECONDS="5")
    order_id = _create("ada+unavailable@example.com")
    queue = system["ORDER_QUEUE_URL"]
    backoffs: list[int] = []

    def record_backoff(params: dict[str, Any], **_: Any) -> None:
        backoffs.extend(entry["VisibilityTimeout"] for entry in params["Entries"])

    event = "provide-client-params.sqs.ChangeMessageVisibilityBatch"  # the consumer's call
    sqs = client("sqs")
    sqs.meta.events.register(event, record_backoff)
    try:
        for receive in (1, 2, 3):
            (message,) = receive_all(queue, visibility=30)
            assert message["Attributes"]["ApproximateReceiveCount"] == str(receive)
            outcome = handle_batch([QueueMessage.from_sqs(message)])
            assert outcome.failed and not outcome.done  # not acknowledged
            assert queue_depth(queue) == (0, 1)  # hidden for the backoff
            # Time passes: let the backoff expire rather than waiting it out.
            sqs.change_message_visibility(
                QueueUrl=queue, ReceiptHandle=message["ReceiptHandle"], VisibilityTimeout=0
            )
    finally:
        sqs.meta.events.unregister(event, record_backoff)

    assert backoffs == [5, 10, 20]  # the consumer's backoffs double per receive
    assert receive_all(queue) == []  # the 4th receive moves it to the DLQ (maxReceiveCount 3)
    (letter,) = dlq.peek(system["ORDER_DLQ_URL"])
    assert json.loads(letter.body)["order_id"] == str(order_id)
    assert letter.reason == "max receives exceeded"

    assert status_of(system["db"], order_id) == "PROCESSING"
    assert payments_of(system["db"], order_id)[0][0::4] == ("PENDING", 9)  # 3 x 3 attempts
    assert len(provider.calls) == 9
    assert provider.charged_keys == set()  # never charged
    assert emailed_statuses(system["AWS_ENDPOINT_URL"], order_id) == ["PENDING", "PROCESSING"]


def test_a_transient_failure_reaches_the_caller_as_retryable(system, provider):
    order_id = _create("ada+unavailable@example.com")
    with pytest.raises(TransientPaymentError):
        processing.process_order(order_id)
    assert status_of(system["db"], order_id) == "PROCESSING"
    # The statuses that were saved are announced even though the delivery failed.
    assert emailed_statuses(system["AWS_ENDPOINT_URL"], order_id) == ["PENDING", "PROCESSING"]


# --- Poison messages on the worker path ------------------------------------------------------


def test_poison_messages_are_dead_lettered_at_once_while_the_batch_goes_on(system, provider):
    good = _create()
    receive_all(system["ORDER_QUEUE_URL"])  # take the outbox's message out of the way
    queue = system["ORDER_QUEUE_URL"]
    bodies = {
        "malformed": "{not json",
        "no order id": json.dumps({"id": str(good)}),
        "unknown order": json.dumps({"order_id": "00000000-0000-4000-8000-000000000000"}),
        "good": json.dumps({"order_id": str(good)}),
    }
    for body in bodies.values():
        client("sqs").send_message(QueueUrl=queue, MessageBody=body)
    messages = receive_all(queue)
    outcome = handle_batch([QueueMessage.from_sqs(m) for m in messages])

    assert len(outcome.done) == 4 and outcome.failed == []  # all may be deleted
    assert status_of(system["db"], good) == "COMPLETED"
    letters = {letter.body: letter for letter in dlq.peek(system["ORDER_DLQ_URL"])}
    assert set(letters) == {bodies["malformed"], bodies["no order id"], bodies["unknown order"]}
    assert all(letter.receive_count == 1 for letter in letters.values())  # first receive there
    assert "not an order message" in letters[bodies["malformed"]].reason
    assert "does not exist" in letters[bodies["unknown order"]].reason


# --- Notification cost ------------------------------------------------------------------------


def test_customer_emails_follow_customer_email_statuses_while_events_cover_every_status(
    system, provider, configure
):
    configure(CUSTOMER_EMAIL_STATUSES="pending, COMPLETED")
    tap = subscribe_tap(system["NOTIFICATION_TOPIC_ARN"], "tap-every-status")
    order_id = _create()

    assert processing.process_order(order_id) == "COMPLETED"

    assert emailed_statuses(system["AWS_ENDPOINT_URL"], order_id) == ["PENDING", "COMPLETED"]
    assert sorted(status for status, _ in tapped_events(tap)) == sorted(LIFECYCLE)
    assert count(system["db"], "SELECT count(*) FROM outbox WHERE published_at IS NULL") == 0


def test_an_orders_status_events_leave_in_one_sns_call_before_its_emails(system, provider):
    calls: list[str] = []

    def record(model: Any, **_: Any) -> None:
        calls.append(model.name)

    hooks = [(client("sns"), "before-call.sns"), (client("ses"), "before-call.ses")]
    for aws_client, event in hooks:
        aws_client.meta.events.register(event, record)
    try:
        order_id = _create()
        assert processing.process_order(order_id) == "COMPLETED"
    finally:
        for aws_client, event in hooks:
            aws_client.meta.events.unregister(event, record)

    assert calls == ["PublishBatch"] + ["SendEmail"] * len(LIFECYCLE)
    assert emailed_statuses(system["AWS_ENDPOINT_URL"], order_id) == list(LIFECYCLE)
