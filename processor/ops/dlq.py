"""Dead-letter queue admin: list, show and redrive messages (`python -m processor dlq ...`)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from processor.adapters.aws import client


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
    sqs = client("sqs")
    try:
        while len(found) < max_messages:
            response = sqs.receive_message(
                QueueUrl=dlq_url,
                MaxNumberOfMessages=min(10, max_messages - len(found)),
                VisibilityTimeout=30,
                WaitTimeSeconds=0,
                AttributeNames=["ApproximateReceiveCount"],
                MessageAttributeNames=["All"],
            )
            messages = response.get("Messages", [])
            if not messages:
                break
            for message in messages:
                found[message["MessageId"]] = _dead_letter(message)
    finally:
        _release(sqs, dlq_url, [letter.receipt_handle for letter in found.values()])
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
    sqs = client("sqs")
    try:
        while message_ids is None or moved < len(message_ids):
            response = sqs.receive_message(
                QueueUrl=dlq_url, MaxNumberOfMessages=10, VisibilityTimeout=30, WaitTimeSeconds=0
            )
            messages = [m for m in response.get("Messages", []) if m["MessageId"] not in seen]
            if not messages:
                break
            for message in messages:
                seen.add(message["MessageId"])
                if message_ids is None or message["MessageId"] in message_ids:
                    sqs.send_message(QueueUrl=queue_url, MessageBody=message["Body"])
                    sqs.delete_message(QueueUrl=dlq_url, ReceiptHandle=message["ReceiptHandle"])
                    moved += 1
                else:
                    skipped.append(message["ReceiptHandle"])
    finally:
        _release(sqs, dlq_url, skipped)
    return moved


def _release(sqs: Any, queue_url: str, receipt_handles: list[str]) -> None:
    """Make received messages visible again now instead of when their visibility ends."""
    for start in range(0, len(receipt_handles), 10):
        sqs.change_message_visibility_batch(
            QueueUrl=queue_url,
            Entries=[
                {"Id": str(n), "ReceiptHandle": handle, "VisibilityTimeout": 0}
                for n, handle in enumerate(receipt_handles[start : start + 10])
            ],
        )
