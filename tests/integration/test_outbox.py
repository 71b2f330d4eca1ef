"""The transactional outbox: what an AWS outage leaves unsent is delivered later by the sweep,
once, and the order is processed as if nothing had happened."""

from __future__ import annotations

import contextlib
import json
import threading
from collections.abc import Iterator
from typing import Any
from uuid import UUID

import boto3
import pytest
from botocore.config import Config

from processor.adapters import aws
from processor.orders import service as order_service
from processor.outbox import relay as outbox
from processor.processing import service as processing
from tests.helpers import (
    LIFECYCLE,
    consume_once,
    count,
    emailed_statuses,
    order_request,
    queue_depth,
    receive_all,
    rows,
    status_of,
    subscribe_tap,
    tapped_events,
)
from tests.integration.conftest import ORDER

pytestmark = pytest.mark.usefixtures("invariants_hold")


@contextlib.contextmanager
def unreachable(*services_down: str) -> Iterator[None]:
    """The named AWS services refuse connections (nothing listens on port 9) in the block."""
    dead = Config(connect_timeout=1, retries={"max_attempts": 1})
    with pytest.MonkeyPatch.context() as patch:
        for service in services_down:
            down = boto3.client(service, endpoint_url="http://127.0.0.1:9", config=dead)
            patch.setitem(aws._clients, service, down)
        yield


def _unsent(db: Any, kind: str) -> list[tuple[Any, ...]]:
    return rows(
        db,
        "SELECT status, attempts, last_error IS NOT NULL FROM outbox"
        " WHERE kind = %s AND published_at IS NULL ORDER BY id",
        kind,
    )


def test_an_order_taken_while_sqs_is_down_is_queued_once_by_the_sweep(api, system, configure):
    configure(OUTBOX_GRACE_SECONDS="0")
    with unreachable("sqs"):
        status, created, _ = api.post("/orders", ORDER)
    assert status == 201
    assert created["status"] == "PENDING"
    assert _unsent(system["db"], "order") == [("PENDING", 1, True)]  # tried once, error kept
    assert queue_depth(system["ORDER_QUEUE_URL"]) == (0, 0)

    swept = outbox.sweep()  # SQS is back

    assert (swept.sent, swept.failed) == (2, 0)  # the queue message and the PENDING email
    assert _unsent(system["db"], "order") == []
    assert consume_once(system["ORDER_QUEUE_URL"]).done  # exactly one message, processed
    assert status_of(system["db"], created["order_id"]) == "COMPLETED"

    again = outbox.sweep()
    assert (again.sent, again.failed) == (0, 0)
    assert receive_all(system["ORDER_QUEUE_URL"]) == []
    assert emailed_statuses(system["AWS_ENDPOINT_URL"], created["order_id"]) == list(LIFECYCLE)


def test_the_sweep_leaves_fresh_records_to_the_immediate_relay(system, configure):
    configure(OUTBOX_GRACE_SECONDS="3600")
    with unreachable("sqs"):
        order_service.create_order(order_request())
    assert (outbox.sweep().sent, len(_unsent(system["db"], "order"))) == (0, 1)
    configure(OUTBOX_GRACE_SECONDS="0")
    assert outbox.sweep().sent == 2


def test_processing_confirms_a_sent_order_message_so_the_sweep_never_resends_it(
    system, configure
):
    configure(OUTBOX_GRACE_SECONDS="0", ORDER_MESSAGE_CONFIRM_SECONDS="3600")
    body, _ = order_service.create_order(order_request())
    assert _unsent(system["db"], "order") == [("PENDING", 0, False)]  # sent, not confirmed

    assert outbox.sweep().sent == 1  # the PENDING email only: the message is in the queue
    assert consume_once(system["ORDER_QUEUE_URL"]).done
    assert status_of(system["db"], body["order_id"]) == "COMPLETED"
    assert _unsent(system["db"], "order") == []

    configure(ORDER_MESSAGE_CONFIRM_SECONDS="0")
    assert outbox.sweep().sent == 0
    assert receive_all(system["ORDER_QUEUE_URL"]) == []


def test_an_order_message_never_confirmed_is_sent_again_after_the_confirm_window(
    system, configure
):
    configure(OUTBOX_GRACE_SECONDS="0", ORDER_MESSAGE_CONFIRM_SECONDS="3600")
    body, _ = order_service.create_order(order_request())
    assert len(receive_all(system["ORDER_QUEUE_URL"])) == 1  # and lost: deleted unprocessed
    assert outbox.sweep().sent == 1  # the PENDING email; the message still counts as queued

    configure(ORDER_MESSAGE_CONFIRM_SECONDS="0")
    assert outbox.sweep().sent == 1
    assert consume_once(system["ORDER_QUEUE_URL"]).done
    assert status_of(system["db"], body["order_id"]) == "COMPLETED"
    assert _unsent(system["db"], "order") == []


def test_concurrent_sweeps_send_each_record_once(system, configure):
    configure(OUTBOX_GRACE_SECONDS="0")
    with unreachable("sqs"):
        created = [
            order_service.create_order(order_request(f"c{n}@example.com"))[0] for n in range(12)
        ]
    start = threading.Barrier(4)
    results: list[outbox.RelayResult] = []

    def sweep() -> None:
        start.wait(10)
        results.append(outbox.sweep())

    threads = [threading.Thread(target=sweep) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)

    assert sum(r.sent for r in results) == 24 and sum(r.failed for r in results) == 0
    queued = [m["Body"] for m in receive_all(system["ORDER_QUEUE_URL"])]
    assert sorted(json.loads(b)["order_id"] for b in queued) == sorted(
        order["order_id"] for order in created
    )
    for order in created:
        assert emailed_statuses(system["AWS_ENDPOINT_URL"], order["order_id"]) == ["PENDING"]


def test_an_email_outage_delays_notifications_but_not_processing(system, configure):
    configure(OUTBOX_GRACE_SECONDS="0")
    body, _ = order_service.create_order(order_request())
    with unreachable("ses"):
        assert processing.process_order(UUID(body["order_id"])) == "COMPLETED"
    assert [status for status, _, failed in _unsent(system["db"], "notification")] == list(
        LIFECYCLE
    )
    assert emailed_statuses(system["AWS_ENDPOINT_URL"], body["order_id"]) == []

    assert outbox.sweep().sent == len(LIFECYCLE)
    assert outbox.sweep().sent == 0
    assert emailed_statuses(system["AWS_ENDPOINT_URL"], body["order_id"]) == list(LIFECYCLE)


def test_an_sns_outage_never_sends_a_customer_email_twice(system, configure):
    configure(OUTBOX_GRACE_SECONDS="0")
    events = subscribe_tap(system["NOTIFICATION_TOPIC_ARN"], "tap-all")
    body, _ = order_service.create_order(order_request())
    with unreachable("sns"):
        assert processing.process_order(UUID(body["order_id"])) == "COMPLETED"
    assert len(_unsent(system["db"], "notification")) == len(LIFECYCLE)

    assert outbox.sweep().sent == len(LIFECYCLE)

    assert emailed_statuses(system["AWS_ENDPOINT_URL"], body["order_id"]) == list(LIFECYCLE)
    assert [status for status, _ in tapped_events(events)] == list(LIFECYCLE)
    assert count(system["db"], "SELECT count(*) FROM outbox WHERE published_at IS NULL") == 0
