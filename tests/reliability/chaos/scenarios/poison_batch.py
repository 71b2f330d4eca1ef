"""Malformed, unknown-order and oversized messages in one batch with valid ones."""

from __future__ import annotations

import json
from typing import Any
from uuid import uuid4

from tests.helpers import wait_until
from tests.reliability.chaos.audit import Outcome, audit
from tests.reliability.chaos.client import place_orders
from tests.reliability.chaos.stack import Stack


def poison_batch(stack: Stack, good: int = 3) -> Outcome:
    """Fault: `good` valid order messages and the `poison_messages` sent in one batch. Must hold:
    each poison message goes to the DLQ at once with a `dead_letter_reason`, the valid orders
    complete, and nothing stays on the queue."""
    stack.stop_workers()
    outcome = Outcome("Poison and oversized messages", "")
    accepted = place_orders(stack.api_url, f"poison-{uuid4().hex[:8]}", good, outcome.started + 30)
    bodies = list(poison_messages(real_order_id=next(iter(accepted.values()))).values())
    outcome.tried = f"{good} valid + {len(bodies)} poison messages, one batch"
    queue, dlq = stack.env["ORDER_QUEUE_URL"], stack.env["ORDER_DLQ_URL"]
    stack.sqs().send_message_batch(
        QueueUrl=queue,
        Entries=[{"Id": str(n), "MessageBody": body} for n, body in enumerate(bodies)],
    )
    outcome.figures["queued"] = stack.queue_depth(queue)
    stack.start_worker(concurrency=1)
    wait_until(lambda: stack.queue_depth(dlq) >= len(bodies), 30, "poison in the DLQ")
    # An operator inspects and removes them (`dlq list`, then purge): drained here.
    letters = _drain(stack, dlq)
    reasons = [m.get("MessageAttributes", {}).get("dead_letter_reason", {}) for m in letters]
    outcome.figures["dead_lettered"] = len(letters)
    outcome.figures["reasons"] = sorted({r.get("StringValue", "") for r in reasons})
    outcome.require(len(letters) == len(bodies), f"{len(letters)} in the DLQ, {len(bodies)} sent")
    outcome.require(all(r.get("StringValue") for r in reasons), "a dead letter without reason")
    audit(stack, outcome, accepted)  # the valid orders completed; the checker is clean
    outcome.require(stack.queue_depth(queue) == 0, "messages left on the queue")
    return outcome.finish()


def poison_messages(real_order_id: str) -> dict[str, str]:
    """What is wrong with each poison message -> its body (the oversized one names a real
    order, so only its size can be what sends it to the DLQ)."""
    return {
        "malformed JSON": "{not json",
        "JSON array": "[1, 2, 3]",
        "no order_id": "{}",
        "unknown order": json.dumps({"order_id": str(uuid4())}),
        "oversized (20 KB)": json.dumps({"order_id": real_order_id, "padding": "x" * 20_000}),
    }


def _drain(stack: Stack, url: str) -> list[dict[str, Any]]:
    """Receive and delete everything on a queue."""
    sqs, found = stack.sqs(), []
    while True:
        batch = sqs.receive_message(
            QueueUrl=url,
            MaxNumberOfMessages=10,
            MessageAttributeNames=["All"],
            VisibilityTimeout=30,
        ).get("Messages", [])
        if not batch:
            return found
        found.extend(batch)
        entries = [{"Id": str(n), "ReceiptHandle": m["ReceiptHandle"]} for n, m in enumerate(batch)]
        sqs.delete_message_batch(QueueUrl=url, Entries=entries)
