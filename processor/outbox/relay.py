"""Outbox relay: deliver committed outbox records to SQS (orders) or SES/SNS (notifications).

Queue messages are locked with `FOR UPDATE SKIP LOCKED` while being sent and their batch is
marked in one commit (a repeated queue message changes nothing). Notification records are
leased instead (`OutboxRepository.lease_notifications`), so each is marked the moment SES
accepted its email and a crash repeats at most the email in flight; their event (SNS) and
email (SES) are recorded apart, so a refused email never re-publishes its event, and a
failure backs the record off, or gives it up when SES refuses for good. Either way a mark
commits only after its send succeeded, so a crash means a resend (at least once), never a
loss. The one exception is a new order's queue message (`publish_new_order`), which the
processor confirms instead.
"""

from __future__ import annotations

import contextlib
import logging
import time
from collections.abc import Iterator
from dataclasses import dataclass
from uuid import UUID

from db.repository import OutboxRecord, OutboxRepository
from db.uow import UnitOfWork
from processor import metrics
from processor.adapters.notifications import Note, Refusal, publish_events, send_email
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
    sent = failed = 0
    if kind in (None, "order"):
        with UnitOfWork() as uow:
            records = uow.outbox.claim_for_sending(
                limit, older_than_seconds, ids, order_id, "order", unconfirmed_after_seconds
            )
            for record_id, error in _send_orders(config, records):
                if error is None:
                    sent += 1
                else:
                    failed += 1
                    log.warning("outbox record %s not sent (will retry): %s", record_id, error)
                    uow.outbox.mark_failed(record_id, error)
            uow.commit()
    if kind in (None, "notification"):
        with UnitOfWork(single_statement=True) as uow:
            notes = uow.outbox.lease_notifications(
                limit, config.outbox_lease_seconds, older_than_seconds, ids, order_id
            )
        if notes:
            result = _send_notifications(config, notes)
            sent, failed = sent + result.sent, failed + result.failed
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


def publish_quietly(**filters: object) -> None:
    """Publish right after a commit; an error here is left to the sweeper, never raised."""
    try:
        publish(**filters)  # type: ignore[arg-type]
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


def _send_notifications(config: Settings, records: list[OutboxRecord]) -> RelayResult:
    """Deliver leased notification records: each record's event (unless an earlier attempt
    published it), then its email, marking each record sent the moment SES accepted its
    email. So a crash repeats at most the email in flight, and a refused email never
    publishes its event again. A failure backs the record off (`_failed`). Sending stops at
    half the lease, so no other relay takes a record while this one may still send it; the
    records left are taken again when their lease ends."""
    deadline = time.monotonic() + config.outbox_lease_seconds / 2
    with UnitOfWork() as uow:
        order_ids = list({r.order_id for r in records})
        items = uow.orders.items_for(order_ids)
        orders = {order_id: uow.orders.get(order_id) for order_id in order_ids}  # once each
    notes: dict[int, Note] = {}
    failed = 0
    for record in records:
        order = orders[record.order_id]
        if order is None:
            _failed(config, record, Refusal("order no longer exists", permanent=True))
            failed += 1
            continue
        view = notification_view(order, items[record.order_id])
        notes[record.id] = Note(record.id, view, record.status, record.payload.get("reason"))
    by_id = {record.id: record for record in records}
    unpublished = [notes[r.id] for r in records if r.id in notes and not r.event_sent]
    ready = [notes[r.id] for r in records if r.id in notes and r.event_sent]
    for chunk in chunks(unpublished, SNS_BATCH):  # one SNS call per ten status changes
        outcome = publish_events(config, list(chunk))
        accepted = [note for note in chunk if outcome.get(note.record_id) is None]
        if accepted:
            with _at_once() as outbox:
                outbox.mark_event_sent([note.record_id for note in accepted])
        ready += accepted
        for note in chunk:
            refusal = outcome.get(note.record_id)
            if refusal is not None:
                _failed(config, by_id[note.record_id], refusal)
                failed += 1
    sent = 0
    silent = [n.record_id for n in ready if n.status not in config.customer_email_statuses]
    if silent:
        with _at_once() as outbox:
            outbox.mark_sent(silent)
        sent += len(silent)
    for note in ready:
        if note.status not in config.customer_email_statuses:
            continue
        if time.monotonic() > deadline:
            break
        refusal = send_email(config, note)
        if refusal is None:
            with _at_once() as outbox:
                outbox.mark_sent([note.record_id])
            sent += 1
        else:
            _failed(config, by_id[note.record_id], refusal)
            failed += 1
    return RelayResult(sent, failed)


@contextlib.contextmanager
def _at_once() -> Iterator[OutboxRepository]:
    """The outbox for one change that commits by itself, at once (an autocommit statement)."""
    with UnitOfWork(single_statement=True) as uow:
        yield uow.outbox


def retry_delay(config: Settings, attempts: int) -> float:
    """Seconds before the next try of a record that failed `attempts` times: doubling from
    OUTBOX_RETRY_BASE_SECONDS, at most OUTBOX_RETRY_MAX_SECONDS."""
    return float(
        min(config.outbox_retry_max_seconds, config.outbox_retry_base_seconds * 2 ** (attempts - 1))
    )


def _failed(config: Settings, record: OutboxRecord, refusal: Refusal) -> None:
    """Back a failed record off, or give it up: at once when the refusal is permanent, and at
    attempt OUTBOX_MAX_ATTEMPTS when the service keeps answering with an error. An unreachable
    service (an outage) only backs off: the message is not at fault and will go when the
    service is back. Given-up records count in the NotificationsGivenUp metric (alarmed) and
    show in `admin outbox`."""
    attempts = record.attempts + 1
    if refusal.permanent or (not refusal.unreachable and attempts >= config.outbox_max_attempts):
        log.warning(
            "outbox record %s given up after %d attempt(s): %s", record.id, attempts, refusal.error
        )
        with _at_once() as outbox:
            outbox.give_up(record.id, refusal.error)
        emit_metric(metrics.NOTIFICATIONS_GIVEN_UP)
        return
    delay = retry_delay(config, attempts)
    log.warning("outbox record %s not sent (retry in %.0f s): %s", record.id, delay, refusal.error)
    with _at_once() as outbox:
        outbox.retry_later(record.id, refusal.error, delay)
