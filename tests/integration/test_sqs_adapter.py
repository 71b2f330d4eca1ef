"""The one SQS adapter the worker, the DLQ tools, the relay and the consumer share, on moto:
batches past SQS's limit of ten, and partial failures reported per message."""

from __future__ import annotations

from processor.adapters.sqs import Queue
from tests.helpers import queue_depth, receive_all


def test_more_than_ten_messages_are_sent_released_and_deleted_in_chunks(aws):
    queue = Queue(aws["ORDER_DLQ_URL"])  # no redrive policy: receives never move messages
    sent = list(queue.send_batch([(str(n), f"body-{n}") for n in range(23)]))
    assert sorted(int(entry_id) for entry_id, error in sent if error is None) == list(range(23))

    queue.release([m["ReceiptHandle"] for m in receive_all(queue.url, visibility=60)])
    assert queue_depth(queue.url) == (23, 0)

    received = receive_all(queue.url, visibility=60)
    assert sorted(m["Body"] for m in received) == sorted(f"body-{n}" for n in range(23))
    queue.delete([m["ReceiptHandle"] for m in received])
    assert queue.depth() == {"visible": 0, "in_flight": 0, "delayed": 0}


def test_a_refused_batch_fails_each_of_its_messages_and_later_batches_still_go(aws):
    queue = Queue(aws["ORDER_DLQ_URL"])
    bodies = [("same", "a"), ("same", "b"), *((f"m{n}", "c") for n in range(8)), ("x", "d")]

    results = dict(queue.send_batch(bodies))

    assert results["same"].startswith("sqs: ") and results["m0"].startswith("sqs: ")
    assert results["x"] is None  # the second call of ten went through
    assert [m["Body"] for m in receive_all(queue.url, visibility=60)] == ["d"]


def test_message_attributes_and_visibility_changes_reach_the_queue(aws):
    queue = Queue(aws["ORDER_DLQ_URL"])
    queue.send("poison", {"dead_letter_reason": "not an order message"})

    (message,) = queue.receive(visibility_timeout=60)
    reason = message["MessageAttributes"]["dead_letter_reason"]["StringValue"]
    assert reason == "not an order message"
    assert message["Attributes"]["ApproximateReceiveCount"] == "1"

    queue.change_visibility([message["ReceiptHandle"]], 0)
    assert queue_depth(queue.url) == (1, 0)
