"""Dead-letter queue admin: list, show and redrive messages (`python -m processor dlq ...`)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from processor.aws import client


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
        handles = [letter.receipt_handle for letter in found.values()]
        for start in range(0, len(handles), 10):
            sqs.change_message_visibility_batch(
                QueueUrl=dlq_url,
                Entries=[
                    {"Id": str(n), "ReceiptHandle": h, "VisibilityTimeout": 0}
                    for n, h in enumerate(handles[start : start + 10])
                ],
            )
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
    tolerates, rather than losing one.
    """
    moved = 0
    sqs = client("sqs")
    while True:
        response = sqs.receive_message(
            QueueUrl=dlq_url, MaxNumberOfMessages=10, VisibilityTimeout=30, WaitTimeSeconds=0
        )
        messages = response.get("Messages", [])
        chosen = [m for m in messages if message_ids is None or m["MessageId"] in message_ids]
        for message in chosen:
            sqs.send_message(QueueUrl=queue_url, MessageBody=message["Body"])
            sqs.delete_message(QueueUrl=dlq_url, ReceiptHandle=message["ReceiptHandle"])
            moved += 1
        skipped = [m for m in messages if m not in chosen]
        for message in skipped:
            sqs.change_message_visibility(
                QueueUrl=dlq_url, ReceiptHandle=message["ReceiptHandle"], VisibilityTimeout=0
            )
        if not messages or (message_ids is not None and not chosen):
            return moved
