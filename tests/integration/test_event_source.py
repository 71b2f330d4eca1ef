"""Local Lambda-mode delivery (`processor.devstack.event_source` given to
`Worker(delivery=...)`): the Chalice `process_orders` handler receives AWS-shaped batches
of at most its declared size, and its `batchItemFailures` decide what is deleted and what comes
back."""

from __future__ import annotations

import contextlib
import json
import os
from collections.abc import Iterator
from typing import Any

import pytest

from processor.adapters.aws import client
from processor.devstack.event_source import LambdaDelivery
from processor.entrypoints.worker import Worker, WorkerOptions
from processor.orders import service as order_service
from tests.helpers import (
    order_request,
    queue_depth,
    receive_all,
    status_of,
    wait_until,
    worker_on_thread,
)

pytestmark = pytest.mark.usefixtures("invariants_hold")
RECORD_KEYS = {
    "messageId",
    "receiptHandle",
    "body",
    "attributes",
    "messageAttributes",
    "md5OfBody",
    "eventSource",
    "eventSourceARN",
    "awsRegion",
}


@pytest.fixture
def handler_calls(system: dict[str, Any], monkeypatch: pytest.MonkeyPatch) -> list[Any]:
    """Every (event, response or exception) of the real handler while the test runs."""
    import app

    calls: list[Any] = []
    original = app.process_orders

    def spy(event: dict[str, Any], context: Any) -> Any:
        try:
            response = original(event, context)
        except Exception as error:
            calls.append((event, error))
            raise
        calls.append((event, response))
        return response

    monkeypatch.setattr(app, "process_orders", spy)
    return calls


@contextlib.contextmanager
def lambda_mode(**options: Any) -> Iterator[Worker]:
    settings = {"concurrency": 1, "wait_seconds": 1, "sweep_interval": 0, **options}
    delivery = LambdaDelivery(os.environ["ORDER_QUEUE_URL"], client("sqs").meta.region_name)
    with worker_on_thread(WorkerOptions(**settings), "test-event-source", delivery) as (
        worker,
        _thread,
    ):
        yield worker


def _queued_orders(n: int) -> list[str]:
    return [
        order_service.create_order(order_request(f"c{i}@example.com"))[0]["order_id"]
        for i in range(n)
    ]


def _queue_arn(queue_url: str) -> str:
    attributes = client("sqs").get_queue_attributes(QueueUrl=queue_url, AttributeNames=["QueueArn"])
    return attributes["Attributes"]["QueueArn"]


def test_records_have_the_aws_shape_in_batches_of_the_declared_size(
    system, handler_calls, monkeypatch
):
    import app

    (source,) = [s for s in app.app.event_sources if s.name == "process_orders"]
    monkeypatch.setattr(source, "batch_size", 3)
    orders = _queued_orders(7)

    with lambda_mode():
        wait_until(
            lambda: all(status_of(system["db"], o) == "COMPLETED" for o in orders),
            what="every order to complete through the handler",
        )

    sizes = [len(event["Records"]) for event, _ in handler_calls]
    assert sum(sizes) == 7 and max(sizes) == 3
    records = [record for event, _ in handler_calls for record in event["Records"]]
    assert all(set(record) == RECORD_KEYS for record in records)
    assert {r["eventSourceARN"] for r in records} == {_queue_arn(system["ORDER_QUEUE_URL"])}
    assert {r["eventSource"] for r in records} == {"aws:sqs"}
    assert {r["attributes"]["ApproximateReceiveCount"] for r in records} == {"1"}
    assert all({"SentTimestamp", "SenderId"} <= set(r["attributes"]) for r in records)
    assert sorted(json.loads(r["body"])["order_id"] for r in records) == sorted(orders)
    assert all(response == {"batchItemFailures": []} for _, response in handler_calls)
    assert queue_depth(system["ORDER_QUEUE_URL"]) == (0, 0)  # every record deleted


def test_reported_failures_come_back_and_the_rest_of_the_batch_is_deleted(system, handler_calls):
    good = order_service.create_order(order_request("ada@example.com"))[0]["order_id"]
    retried_body, _ = order_service.create_order(order_request("bob+unavailable@example.com"))
    retried = retried_body["order_id"]
    for message in receive_all(system["ORDER_QUEUE_URL"]):  # one batch of ours instead
        client("sqs").delete_message(
            QueueUrl=system["ORDER_QUEUE_URL"], ReceiptHandle=message["ReceiptHandle"]
        )
    bodies = [json.dumps({"order_id": good}), json.dumps({"order_id": retried}), "{not json"]
    client("sqs").send_message_batch(
        QueueUrl=system["ORDER_QUEUE_URL"],
        Entries=[{"Id": str(n), "MessageBody": body} for n, body in enumerate(bodies)],
    )
    wait_until(lambda: queue_depth(system["ORDER_QUEUE_URL"]) == (3, 0), what="the batch")

    with lambda_mode():
        # The fixture's queue moves a message to the DLQ after 3 receives: the retried one
        # comes back (not deleted) until then; the poison one goes there at once.
        wait_until(
            lambda: queue_depth(system["ORDER_DLQ_URL"])[0] == 2,
            timeout=20,
            what="the retried and the poison message in the DLQ",
        )

    first_event, first_response = handler_calls[0]
    ids = {r["body"]: r["messageId"] for r in first_event["Records"]}
    retried_id = ids[json.dumps({"order_id": retried})]
    assert len(first_event["Records"]) == 3
    assert first_response == {"batchItemFailures": [{"itemIdentifier": retried_id}]}
    retried_counts = [
        r["attributes"]["ApproximateReceiveCount"]
        for event, _ in handler_calls
        for r in event["Records"]
        if r["messageId"] == retried_id
    ]
    assert retried_counts == ["1", "2", "3"]
    assert all(
        r["messageId"] == retried_id for event, _ in handler_calls[1:] for r in event["Records"]
    )  # the processed and the poison message were deleted after the first invocation
    assert status_of(system["db"], good) == "COMPLETED"
    assert status_of(system["db"], retried) == "PROCESSING"
    assert queue_depth(system["ORDER_QUEUE_URL"]) == (0, 0)


def test_a_handler_error_leaves_the_whole_batch_for_another_delivery(
    system, handler_calls, monkeypatch
):
    import app

    spy = app.process_orders
    crashes: list[str] = []

    def crash_once(event: dict[str, Any], context: Any) -> Any:
        if not crashes:
            crashes.append(event["Records"][0]["messageId"])
            raise RuntimeError("the function crashed")
        return spy(event, context)

    monkeypatch.setattr(app, "process_orders", crash_once)
    orders = _queued_orders(2)

    with lambda_mode(visibility_timeout=1):
        wait_until(
            lambda: all(status_of(system["db"], o) == "COMPLETED" for o in orders),
            what="the batch to be redelivered after the crash",
        )

    assert crashes
    redelivered = [r for event, _ in handler_calls for r in event["Records"]]
    assert {r["attributes"]["ApproximateReceiveCount"] for r in redelivered} == {"2"}
    assert queue_depth(system["ORDER_QUEUE_URL"]) == (0, 0)


def test_a_batch_received_while_stopping_is_released_not_invoked(system, handler_calls):
    _queued_orders(2)
    messages = client("sqs").receive_message(
        QueueUrl=system["ORDER_QUEUE_URL"], MaxNumberOfMessages=10, AttributeNames=["All"]
    )["Messages"]
    delivery = LambdaDelivery(system["ORDER_QUEUE_URL"], "us-east-1")

    outcome = delivery.deliver(messages, stopping=True)

    assert len(outcome.not_started) == 2 and not outcome.done and not outcome.failed
    assert handler_calls == []


def test_a_full_batch_of_orders_costs_under_eight_aws_calls_each_with_all_five_emails(system):
    """Counted at the botocore level, as AWS bills them: the API's send, one receive and one
    delete per batch of ten, one SNS PublishBatch and five SES emails per order."""
    from botocore.client import BaseClient

    calls: list[str] = []
    original = BaseClient._make_api_call

    def counted(self: Any, operation: str, params: dict[str, Any]) -> Any:
        response = original(self, operation, params)
        if operation != "ReceiveMessage" or response.get("Messages"):  # not the idle polls
            calls.append(operation)
        return response

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(BaseClient, "_make_api_call", counted)
        orders = _queued_orders(10)
        with lambda_mode():
            wait_until(
                lambda: all(status_of(system["db"], o) == "COMPLETED" for o in orders),
                what="the batch to complete",
            )

    business = [op for op in calls if op != "GetQueueAttributes"]  # the ARN, once per process
    assert business.count("SendEmail") == 50
    assert len(business) / len(orders) <= 8, sorted(business)
