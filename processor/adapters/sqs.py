"""SQS in one place: receives, and the delete / change-visibility / send batch loops.

SQS takes at most ten entries per batch call. The worker (settle, heartbeat), the DLQ tools
(peek, redrive) and the outbox relay (order messages) all need those loops; they are written
once here so that a fix to one (chunking, a partial failure) reaches every caller.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

from processor import metrics
from processor.adapters.aws import client
from processor.observability import emit_metric, external_error

log = logging.getLogger(__name__)

MAX_BATCH = 10
Item = TypeVar("Item")


def chunks(items: Sequence[Item], size: int = MAX_BATCH) -> Iterator[Sequence[Item]]:
    """`items` in consecutive slices of at most `size` (SQS's batch limit by default)."""
    for start in range(0, len(items), size):
        yield items[start : start + size]


@dataclass(frozen=True)
class Queue:
    """One queue by URL; the boto3 client is the process's shared one (`adapters.aws`)."""

    url: str

    def receive(
        self,
        max_messages: int = MAX_BATCH,
        wait_seconds: int = 0,
        visibility_timeout: int | None = None,
        all_attributes: bool = False,
    ) -> list[dict[str, Any]]:
        """Up to `max_messages` raw messages with their message attributes and receive count
        (every system attribute with `all_attributes`, as Lambda's event records carry)."""
        options: dict[str, Any] = {}
        if visibility_timeout is not None:
            options["VisibilityTimeout"] = visibility_timeout
        response = client("sqs").receive_message(
            QueueUrl=self.url,
            MaxNumberOfMessages=max_messages,
            WaitTimeSeconds=wait_seconds,
            AttributeNames=["All"] if all_attributes else ["ApproximateReceiveCount"],
            MessageAttributeNames=["All"],
            **options,
        )
        messages: list[dict[str, Any]] = response.get("Messages", [])
        return messages

    def delete(self, receipt_handles: Sequence[str]) -> list[str]:
        """Delete received messages; returns the handles SQS would not delete (see `_settle`)."""
        entries = [{"ReceiptHandle": handle} for handle in receipt_handles]
        return self._settle("delete_message_batch", entries)

    def change_visibility(self, receipt_handles: Sequence[str], seconds: int) -> list[str]:
        """Set received messages' visibility timeout; returns the handles SQS refused."""
        entries = [{"ReceiptHandle": h, "VisibilityTimeout": seconds} for h in receipt_handles]
        return self._settle("change_message_visibility_batch", entries)

    def _settle(self, action: str, entries: Sequence[dict[str, Any]]) -> list[str]:
        """Run a batch call over `entries`, ten at a time, and handle its partial failures.

        A batch call succeeds as a whole even when SQS refuses some of its entries (an
        expired or invalid receipt handle, an internal error): those come back under
        `Failed`. They are tried once more; what fails again is logged and counted
        (`SqsBatchEntryFailures`) and its receipt handles returned. A message left undeleted
        comes back after its visibility timeout, which processing tolerates; the count shows
        how often. A call that fails as a whole raises, as before.
        """
        refused: list[str] = []
        for chunk in chunks(entries):
            failed = self._call(action, chunk)
            if failed:
                failed = self._call(action, [entry for entry, _ in failed])
            for entry, reason in failed:
                log.warning("sqs %s refused an entry twice: %s", action, reason)
                refused.append(entry["ReceiptHandle"])
            if failed:
                emit_metric(metrics.SQS_BATCH_ENTRY_FAILURES, len(failed), action=action)
        return refused

    def _call(
        self, action: str, chunk: Sequence[dict[str, Any]]
    ) -> list[tuple[dict[str, Any], str]]:
        """One batch call; the entries SQS answered `Failed` for, with its reason."""
        response = getattr(client("sqs"), action)(
            QueueUrl=self.url, Entries=[{"Id": str(n), **e} for n, e in enumerate(chunk)]
        )
        return [
            (
                chunk[int(bad["Id"])],
                external_error("sqs", f"{bad.get('Code')} {bad.get('Message')}"),
            )
            for bad in response.get("Failed", [])
        ]

    def release(self, receipt_handles: Sequence[str]) -> None:
        """Make received messages visible again now instead of when their visibility ends."""
        self.change_visibility(receipt_handles, 0)

    def send(self, body: str, attributes: dict[str, str] | None = None) -> None:
        """One message, with string message attributes."""
        client("sqs").send_message(
            QueueUrl=self.url,
            MessageBody=body,
            MessageAttributes={
                name: {"DataType": "String", "StringValue": value}
                for name, value in (attributes or {}).items()
            },
        )

    def send_batch(self, bodies: Sequence[tuple[str, str]]) -> Iterator[tuple[str, str | None]]:
        """Send (id, body) pairs; yields (id, None) per message sent and (id, error) per
        message not sent, so the caller can retry exactly those. A call that fails as a whole
        fails each of its messages; the later chunks are still tried."""
        from botocore.exceptions import BotoCoreError, ClientError

        for chunk in chunks(bodies):
            entries = [{"Id": entry_id, "MessageBody": body} for entry_id, body in chunk]
            try:
                response = client("sqs").send_message_batch(QueueUrl=self.url, Entries=entries)
            except (BotoCoreError, ClientError) as error:
                for entry_id, _ in chunk:
                    yield entry_id, external_error("sqs", error)
                continue
            for ok in response.get("Successful", []):
                yield ok["Id"], None
            for bad in response.get("Failed", []):
                yield bad["Id"], external_error("sqs", f"{bad.get('Code')} {bad.get('Message')}")

    def depth(self) -> dict[str, int]:
        """Visible, in-flight and delayed message counts (approximate, as SQS reports them)."""
        attributes = client("sqs").get_queue_attributes(
            QueueUrl=self.url, AttributeNames=list(_DEPTH_ATTRIBUTES)
        )["Attributes"]
        return {short: int(attributes.get(name, 0)) for name, short in _DEPTH_ATTRIBUTES.items()}


_DEPTH_ATTRIBUTES = {
    "ApproximateNumberOfMessages": "visible",
    "ApproximateNumberOfMessagesNotVisible": "in_flight",
    "ApproximateNumberOfMessagesDelayed": "delayed",
}
