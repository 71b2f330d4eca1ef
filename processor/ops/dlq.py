"""Dead-letter queue admin: list, show, redrive messages (`python -m processor admin dlq ...`)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from processor.adapters.sqs import Queue


@dataclass(frozen=True)
class DeadLetter:
    message_id: str
    body: str
    reason: str
    receive_count: int
    receipt_handle: str


def peek(dlq_url: str, max_messages: int = 100) -> list[DeadLetter]:
    """Read DLQ messages without consuming them: received, then made visible again at once."""
    found: dict[str, DeadLetter] = {}
    dlq = Queue(dlq_url)
    try:
        while len(found) < max_messages:
            messages = dlq.receive(min(10, max_messages - len(found)), visibility_timeout=30)
            if not messages:
                break
            for message in messages:
                found[message["MessageId"]] = _dead_letter(message)
    finally:
        dlq.release([letter.receipt_handle for letter in found.values()])
    return list(found.values())


def _dead_letter(message: dict[str, Any]) -> DeadLetter:
    attributes = message.get("MessageAttributes") or {}
    reason = attributes.get("dead_letter_reason", {}).get("StringValue", "max receives exceeded")
    return DeadLetter(
        message_id=message["MessageId"],
        body=message.get("Body", ""),
        reason=reason,
        receive_count=int(message.get("Attributes", {}).get("ApproximateReceiveCount", 1)),
        receipt_handle=message["ReceiptHandle"],
    )


def redrive(dlq_url: str, queue_url: str, message_ids: set[str] | None = None) -> int:
    """Move messages (all, or those in `message_ids`) back to the order queue.

    Send first, delete second: a crash in between duplicates a message, which processing
    tolerates, rather than losing one. Messages not chosen stay invisible until the scan ends,
    so the scan reaches chosen ones behind them (stopping at the first batch without a chosen
    message missed those), and are then released at once.
    """
    moved = 0
    seen: set[str] = set()
    skipped: list[str] = []
    dlq, queue = Queue(dlq_url), Queue(queue_url)
    try:
        while message_ids is None or moved < len(message_ids):
            received = dlq.receive(visibility_timeout=30)
            messages = [m for m in received if m["MessageId"] not in seen]
            if not messages:
                break
            for message in messages:
                seen.add(message["MessageId"])
                if message_ids is None or message["MessageId"] in message_ids:
                    queue.send(message["Body"])
                    dlq.delete([message["ReceiptHandle"]])
                    moved += 1
                else:
                    skipped.append(message["ReceiptHandle"])
    finally:
        dlq.release(skipped)
    return moved

