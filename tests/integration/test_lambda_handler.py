"""The SQS Lambda handler (`app.process_orders`) through Chalice's test client: partial batch
responses, poison messages dead-lettered at once with their reason, the rest processed."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any
from uuid import uuid4

import pytest
from chalice.test import Client

from processor.orders import service as order_service
from tests.helpers import (
    LIFECYCLE,
    count,
    emailed_statuses,
    lambda_event,
    order_request,
    receive_all,
    status_of,
)
from tests.integration.conftest import ORDER

pytestmark = pytest.mark.usefixtures("invariants_hold")


@pytest.fixture
def lambda_client(system: dict[str, Any]) -> Iterator[Client]:
    from app import app

    with Client(app) as test_client:
        yield test_client


def _invoke(lambda_client: Client, event: dict[str, Any]) -> dict[str, Any]:
    return lambda_client.lambda_.invoke("process_orders", event).payload


def _event(lambda_client: Client, bodies: list[str]) -> dict[str, Any]:
    """Chalice's generated event, with the distinct message ids that SQS would give."""
    event = lambda_client.events.generate_sqs_event(message_bodies=bodies)
    for record in event["Records"]:
        record["messageId"] = str(uuid4())
    return event


def _dead_letters(dlq_url: str) -> list[dict[str, Any]]:
    return [
        {
            "body": m["Body"],
            "reason": m["MessageAttributes"]["dead_letter_reason"]["StringValue"],
            "source": m["MessageAttributes"]["source_message_id"]["StringValue"],
        }
        for m in receive_all(dlq_url)
    ]


def _new_order(system: dict[str, Any], email: str = "ada@example.com") -> str:
    """An order whose own queue message is taken away: the tests deliver their own events."""
    body, _ = order_service.create_order(order_request(email))
    receive_all(system["ORDER_QUEUE_URL"])
    return body["order_id"]


def test_the_handler_processes_an_order_received_from_the_queue(api, system, lambda_client):
    _, created, _ = api.post("/orders", ORDER)
    event = lambda_event(receive_all(system["ORDER_QUEUE_URL"]))
    assert len(event["Records"]) == 1

    assert _invoke(lambda_client, event) == {"batchItemFailures": []}
    assert status_of(system["db"], created["order_id"]) == "COMPLETED"
    assert emailed_statuses(system["AWS_ENDPOINT_URL"], created["order_id"]) == list(LIFECYCLE)
    # Lambda redelivers the same batch if the function times out: nothing happens twice.
    assert _invoke(lambda_client, event) == {"batchItemFailures": []}
    assert count(system["db"], "SELECT count(*) FROM payments") == 1
    assert emailed_statuses(system["AWS_ENDPOINT_URL"], created["order_id"]) == list(LIFECYCLE)


def test_only_the_transiently_failing_record_is_reported_for_retry(system, lambda_client):
    good, retried = _new_order(system), _new_order(system, "bob+unavailable@example.com")
    bodies = [
        json.dumps({"order_id": good}),
        "{not json",
        json.dumps({"order_id": retried}),
        json.dumps({"order_id": str(uuid4())}),
    ]
    event = _event(lambda_client, bodies)
    ids = [record["messageId"] for record in event["Records"]]

    assert _invoke(lambda_client, event) == {"batchItemFailures": [{"itemIdentifier": ids[2]}]}
    assert status_of(system["db"], good) == "COMPLETED"
    assert status_of(system["db"], retried) == "PROCESSING"
    letters = sorted(_dead_letters(system["ORDER_DLQ_URL"]), key=lambda d: ids.index(d["source"]))
    assert [(d["source"], d["body"]) for d in letters] == [
        (ids[1], bodies[1]),
        (ids[3], bodies[3]),
    ]
    assert "not an order message" in letters[0]["reason"]
    assert "does not exist" in letters[1]["reason"]


def _oversized() -> str:
    return json.dumps({"order_id": str(uuid4()), "note": "x" * 17_000})


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        pytest.param("{not json", "not an order message", id="malformed JSON"),
        pytest.param("", "not an order message", id="empty body"),
        pytest.param('{"id": "x"}', "not an order message", id="missing order_id"),
        pytest.param('{"order_id": "42"}', "not an order message", id="order_id not a UUID"),
        pytest.param('{"order_id": null}', "not an order message", id="order_id null"),
        pytest.param('["order_id"]', "not an order message", id="not an object"),
        pytest.param("[" * 5000 + "]" * 5000, "not an order message", id="deeply nested"),
        pytest.param(
            json.dumps({"order_id": "00000000-0000-4000-8000-000000000000"}),
            "does not exist",
            id="unknown order",
        ),
        pytest.param(_oversized(), "larger than 16384 bytes", id="oversized"),
    ],
)
def test_a_poison_message_goes_to_the_dlq_at_once_with_its_reason(
    system, lambda_client, body, reason
):
    good = _new_order(system)
    event = _event(lambda_client, [body, json.dumps({"order_id": good})])

    assert _invoke(lambda_client, event) == {"batchItemFailures": []}  # nothing to retry

    (letter,) = _dead_letters(system["ORDER_DLQ_URL"])
    assert letter["source"] == event["Records"][0]["messageId"]
    assert letter["body"] == (body or "(empty)")
    assert reason in letter["reason"]
    assert status_of(system["db"], good) == "COMPLETED"  # the rest of the batch went on


def test_a_poison_message_is_retried_rather_than_lost_when_no_dlq_is_configured(
    system, configure, lambda_client
):
    configure(ORDER_DLQ_URL="")
    event = _event(lambda_client, ["{not json"])
    failures = _invoke(lambda_client, event)["batchItemFailures"]
    assert failures == [{"itemIdentifier": event["Records"][0]["messageId"]}]
