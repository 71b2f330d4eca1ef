"""Turn queue messages into `process_order` calls: one door shared by the SQS Lambda handler
and the Fargate/local worker.

Per message: processed (delete), poison (copied to the DLQ at once, then deleted), or failed
(kept, made visible again after an exponential backoff; SQS moves it to the DLQ after
maxReceiveCount receives).
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any
from uuid import UUID

from processor import metrics
from processor.adapters.sqs import Queue
from processor.config import settings
from processor.observability import emit_metric, log_context
from processor.processing.service import UnknownOrder, process_order

log = logging.getLogger(__name__)
MAX_MESSAGE_BYTES = 16_384
MAX_VISIBILITY_SECONDS = 900


class PoisonMessage(Exception):
    """A message that can never succeed; it goes straight to the DLQ."""


@dataclass(frozen=True)
class QueueMessage:
    message_id: str
    body: str
    receipt_handle: str
    receive_count: int

    @classmethod
    def from_lambda_record(cls, record: dict[str, Any]) -> QueueMessage:
        attributes = record.get("attributes") or {}
        return cls(
            message_id=record["messageId"],
            body=record.get("body") or "",
            receipt_handle=record.get("receiptHandle") or "",
            receive_count=int(attributes.get("ApproximateReceiveCount", 1)),
        )

    @classmethod
    def from_sqs(cls, message: dict[str, Any]) -> QueueMessage:
        attributes = message.get("Attributes") or {}
        return cls(
            message_id=message["MessageId"],
            body=message.get("Body") or "",
            receipt_handle=message["ReceiptHandle"],
            receive_count=int(attributes.get("ApproximateReceiveCount", 1)),
        )


@dataclass
class BatchOutcome:
    done: list[QueueMessage] = field(default_factory=list)
    failed: list[QueueMessage] = field(default_factory=list)
    not_started: list[QueueMessage] = field(default_factory=list)


def parse_order_message(body: str) -> tuple[UUID, str | None]:
    """The order id and the correlation id that followed it from the API request."""
    if len(body.encode()) > MAX_MESSAGE_BYTES:
        raise PoisonMessage(f"message larger than {MAX_MESSAGE_BYTES} bytes")
    try:
        payload = json.loads(body)
        correlation = payload.get("correlation_id")
        return UUID(payload["order_id"]), correlation if isinstance(correlation, str) else None
    # RecursionError: deeply nested JSON fits in the size limit and would otherwise be retried.
    except (ValueError, TypeError, KeyError, AttributeError, RecursionError) as error:
        raise PoisonMessage(f"not an order message: {error.__class__.__name__}") from None


def handle_message(message: QueueMessage) -> bool:
    """Process one message; True when it may be deleted from the queue."""
    with log_context(message_id=message.message_id, receive_count=message.receive_count):
        try:
            order_id, correlation = parse_order_message(message.body)
            with log_context(order_id=str(order_id), correlation_id=correlation):
                status = process_order(order_id)
                log.info("order reached %s", status)
                emit_metric(metrics.ORDERS_PROCESSED, final_status=status.value)
            return True
        except (PoisonMessage, UnknownOrder) as error:
            return dead_letter(message, str(error))
        except Exception:
            log.exception("message failed; it will be retried")
            emit_metric(metrics.PROCESSING_FAILURES)
            _back_off(message)
            return False


def handle_batch(
    messages: Iterable[QueueMessage], should_stop: Callable[[], bool] = lambda: False
) -> BatchOutcome:
    outcome = BatchOutcome()
    for message in messages:
        if should_stop():
            outcome.not_started.append(message)
        elif handle_message(message):
            outcome.done.append(message)
        else:
            outcome.failed.append(message)
    return outcome


def lambda_batch_response(records: list[dict[str, Any]]) -> dict[str, Any]:
    """Partial batch response: only failed messages are retried (ReportBatchItemFailures)."""
    outcome = handle_batch(QueueMessage.from_lambda_record(r) for r in records)
    return {"batchItemFailures": [{"itemIdentifier": m.message_id} for m in outcome.failed]}


def dead_letter(message: QueueMessage, reason: str) -> bool:
    """Copy a poison message to the DLQ with its reason; False if that failed (retry)."""
    dlq_url = settings().dlq_url
    if not dlq_url:
        log.error("poison message %s and no ORDER_DLQ_URL: %s", message.message_id, reason)
        return False
    try:
        Queue(dlq_url).send(
            message.body or "(empty)",
            {"dead_letter_reason": reason[:256], "source_message_id": message.message_id},
        )
    except Exception:
        log.exception("could not dead-letter message %s", message.message_id)
        return False
    log.warning("message %s sent to the DLQ: %s", message.message_id, reason)
    emit_metric(metrics.DEAD_LETTERED)
    return True


def _back_off(message: QueueMessage) -> None:
    queue_url = settings().queue_url
    if not queue_url or not message.receipt_handle:
        return
    delay = min(
        MAX_VISIBILITY_SECONDS,
        settings().retry_visibility_base_seconds * 2 ** max(0, message.receive_count - 1),
    )
    try:
        Queue(queue_url).change_visibility([message.receipt_handle], delay)
    except Exception:
        log.warning("could not set retry backoff for %s", message.message_id, exc_info=True)
