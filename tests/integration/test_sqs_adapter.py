"""The one SQS adapter the worker, the DLQ tools, the relay and the consumer share, on moto:
batches past SQS's limit of ten, a send batch refused as a whole, and per-entry `Failed`
answers of delete and change-visibility batches (moto answers `ReceiptHandleIsInvalid` for an
invalid receipt handle inside a batch): retried once, then logged, counted and returned."""

from __future__ import annotations

import contextlib
import json
import logging
from collections.abc import Iterator

import pytest

from processor.adapters.aws import client
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


@contextlib.contextmanager
def batch_calls(action: str) -> Iterator[list[int]]:
    """Entry counts of every `action` batch call the shared client makes inside the block (a
    botocore event hook: it watches the real calls, it does not replace them)."""
    sizes: list[int] = []
    event = f"provide-client-params.sqs.{action}"
    events = client("sqs").meta.events
    watch = "batch-call-watch"
    events.register(event, lambda params, **_: sizes.append(len(params["Entries"])), watch)
    try:
        yield sizes
    finally:
        events.unregister(event, unique_id=watch)


@pytest.mark.parametrize("action", ["DeleteMessageBatch", "ChangeMessageVisibilityBatch"])
def test_entries_sqs_refuses_are_retried_once_then_logged_counted_and_returned(
    aws, action, caplog, capsys, monkeypatch
):
    monkeypatch.delenv("METRICS_DISABLED", raising=False)
    caplog.set_level(logging.WARNING, logger="processor.adapters.sqs")
    queue = Queue(aws["ORDER_DLQ_URL"])
    list(queue.send_batch([(str(n), f"body-{n}") for n in range(12)]))
    handles = [m["ReceiptHandle"] for m in receive_all(queue.url)]
    assert len(handles) == 12
    bad = ["not-a-receipt-handle", "another-bad-handle"]
    # One bad handle in each chunk of ten: SQS settles the rest of the chunk and fails it.
    mixed = [bad[0], *handles[:9], bad[1], *handles[9:]]
    with batch_calls(action) as calls:
        if action == "DeleteMessageBatch":
            refused = queue.delete(mixed)
        else:
            refused = queue.change_visibility(mixed, 0)

    assert refused == bad
    assert calls == [10, 1, 4, 1]  # each chunk, then its one failed entry once more
    settled = queue_depth(queue.url)
    assert settled == ((0, 0) if action == "DeleteMessageBatch" else (12, 0))
    warnings = [r.getMessage() for r in caplog.records]
    assert len(warnings) == 2 and all("ReceiptHandleIsInvalid" in w for w in warnings)
    metrics = [json.loads(line) for line in capsys.readouterr().out.splitlines() if "_aws" in line]
    counted = [m["SqsBatchEntryFailures"] for m in metrics if "SqsBatchEntryFailures" in m]
    assert counted == [1, 1]


def test_batches_sqs_settles_fully_return_no_refused_handles(aws):
    queue = Queue(aws["ORDER_DLQ_URL"])
    list(queue.send_batch([(str(n), "x") for n in range(3)]))
    handles = [m["ReceiptHandle"] for m in receive_all(queue.url)]
    assert queue.change_visibility(handles, 60) == []
    assert queue.delete(handles) == []
    assert queue_depth(queue.url) == (0, 0)
