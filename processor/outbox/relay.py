"""Outbox relay: deliver committed outbox records to SQS (orders) or SES/SNS (notifications).

Records are locked with `FOR UPDATE SKIP LOCKED` while being sent, so concurrent relays never
send the same record at once; a record's published mark commits only after its send
succeeded, so a crash means a resend (at least once), never a loss. The one exception is a new
order's queue message (`publish_new_order`), which the processor confirms instead.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from dataclasses import dataclass
from itertools import chain
from uuid import UUID

from db.repository import OutboxRecord
from db.uow import UnitOfWork
from processor import metrics
from processor.adapters.notifications import Note, notify_batch
from processor.adapters.sqs import Queue, chunks
from processor.config import Settings, settings
from processor.jsonutil import dumps
from processor.observability import emit_metric
from processor.outbox.views import notification_view

log = logging.getLogger(__name__)
BATCH = 100
SNS_BATCH = 10  # PublishBatch's limit
IDEMPOTENCY_KEY_RETENTION_HOURS = 48


@dataclass(frozen=True)
class RelayResult:
    sent: int
    failed: int


def publish(
    ids: list[int] | None = None,
    order_id: UUID | None = None,
    kind: str | None = None,
    older_than_seconds: float = 0,
    limit: int = BATCH,
    unconfirmed_after_seconds: float | None = None,
) -> RelayResult:
    """Send the matching unsent records now; failures stay unsent for the sweeper."""
    config = settings()
    with UnitOfWork() as uow:
        records = uow.outbox.claim_for_sending(
            limit, older_than_seconds, ids, order_id, kind, unconfirmed_after_seconds
        )
        if not records:
            return RelayResult(0, 0)
        sent = failed = 0
        orders = [r for r in records if r.kind == "order"]
        notes = [r for r in records if r.kind == "notification"]
        outcomes = chain(_send_orders(config, orders), _send_notifications(uow, config, notes))
        for record_id, error in outcomes:
            if error is None:
                sent += 1
            else:
                failed += 1
                log.warning("outbox record %s not sent (will retry): %s", record_id, error)
                uow.outbox.mark_failed(record_id, error)
        uow.commit()
    return RelayResult(sent, failed)


def publish_new_order(record: OutboxRecord) -> None:
    """Send a just-committed order's queue message at once, without claiming it first.

    A successful send writes nothing: the processor marks the record when the order leaves
    PENDING, which proves the message arrived, and the sweeper sends another copy only if
    that has not happened after ORDER_MESSAGE_CONFIRM_SECONDS. The request path so costs one
    database round trip, not two. A failed send is noted on the record and retried by the
    sweeper after OUTBOX_GRACE_SECONDS. Never raises: an unsent record is the sweeper's job.
    """
    try:
        for record_id, error in _send_orders(settings(), [record]):
            if error is not None:
                log.warning("order message %s not sent (will retry): %s", record_id, error)
                with UnitOfWork(single_statement=True) as uow:
                    uow.outbox.record_failed_send(record_id, error)
    except Exception:
        log.warning("outbox relay failed; the sweeper will retry", exc_info=True)


def publish_quietly(order_id: UUID, kind: str) -> None:
    """Publish an order's records of `kind` right after a commit; an error here is left to
    the sweeper, never raised."""
    try:
        publish(order_id=order_id, kind=kind)
    except Exception:
        log.warning("outbox relay failed; the sweeper will retry", exc_info=True)


def sweep(config: Settings | None = None, max_batches: int = 50) -> RelayResult:
    """Republish records the immediate relay did not deliver; purge expired idempotency keys."""
    config = config or settings()
    sent = failed = 0
    for _ in range(max_batches):
        result = publish(
            older_than_seconds=config.outbox_grace_seconds,
            unconfirmed_after_seconds=config.order_message_confirm_seconds,
        )
        sent += result.sent
        failed += result.failed
        if result.sent + result.failed < BATCH:
            break
    with UnitOfWork() as uow:
        uow.outbox.purge_idempotency_keys(IDEMPOTENCY_KEY_RETENTION_HOURS)
        unsent, oldest_seconds = uow.reporting.outbox_lag()
        uow.commit()
    emit_metric(metrics.OUTBOX_UNSENT, unsent)
    emit_metric(metrics.OUTBOX_LAG, oldest_seconds)
    return RelayResult(sent, failed)


def _send_orders(config: Settings, records: list[OutboxRecord]) -> Iterator[tuple[int, str | None]]:
    if not records:
        return
    if not config.queue_url:
        for record in records:
            yield record.id, "ORDER_QUEUE_URL is not set"
        return
    bodies = [(str(r.id), dumps(r.payload)) for r in records]
    for entry_id, error in Queue(config.queue_url).send_batch(bodies):
        yield int(entry_id), error


def _send_notifications(
    uow: UnitOfWork, config: Settings, records: list[OutboxRecord]
) -> Iterator[tuple[int, str | None]]:
    if not records:
        return
    order_ids = list({r.order_id for r in records})
    items = uow.orders.items_for(order_ids)
    orders = {order_id: uow.orders.get(order_id) for order_id in order_ids}  # once per order
    notes = []
    for record in records:
        order = orders[record.order_id]
        if order is None:
            yield record.id, "order no longer exists"
            continue
        view = notification_view(order, items[record.order_id])
        notes.append(Note(record.id, view, record.status, record.payload.get("reason")))
    for chunk in chunks(notes, SNS_BATCH):  # one SNS call per ten status changes
        yield from notify_batch(config, list(chunk))
