"""On start the local system re-queues what the database says is unfinished, because the
emulator's queues (and the messages of orders in flight) did not survive the restart."""

from __future__ import annotations

import json

from processor.adapters.aws import client
from processor.orders import service as order_service
from processor.processing import service as processing
from processor.processing.requeue import requeue_unfinished
from tests.helpers import advance_to, consume_once, order_request, receive_all, status_of


def _create() -> str:
    body, _ = order_service.create_order(order_request())
    return str(body["order_id"])


def test_unfinished_orders_get_one_message_each_and_finished_ones_none(system):
    done, pending, processing_order, charged = _create(), _create(), _create(), _create()
    processing.process_order(order_service.parse_order_id(done))
    advance_to(processing_order, "PROCESSING")
    advance_to(charged, "PAYMENT_CONFIRMED")
    _drain(system["ORDER_QUEUE_URL"])  # what a restart of the emulator does to the queue
    assert receive_all(system["ORDER_QUEUE_URL"]) == []

    assert requeue_unfinished(system["ORDER_QUEUE_URL"]) == 3
    queued = receive_all(system["ORDER_QUEUE_URL"])
    assert sorted(json.loads(m["Body"])["order_id"] for m in queued) == sorted(
        [pending, processing_order, charged]
    )


def test_requeued_orders_finish_from_their_saved_status(system):
    stuck = _create()
    advance_to(stuck, "FULFILLED")
    _drain(system["ORDER_QUEUE_URL"])
    requeue_unfinished(system["ORDER_QUEUE_URL"])
    consume_once(system["ORDER_QUEUE_URL"])
    assert status_of(system["db"], stuck) == "COMPLETED"


def _drain(queue_url: str) -> None:
    for message in receive_all(queue_url):
        client("sqs").delete_message(QueueUrl=queue_url, ReceiptHandle=message["ReceiptHandle"])
