"""Send a queue message again for every order the database says is unfinished.

The local system's queues live in the emulator's memory, so a restart loses the messages of
orders that were in flight, waiting for a retry or dead-lettered: those orders would stay in
PROCESSING (or PENDING) forever. Processing continues from each order's saved status and
ignores a message for a finished order, so an extra copy is always harmless; an order whose
cause persists (a provider that keeps failing) goes through its retries to the DLQ again,
where `admin dlq` can see and redrive it.
"""

from __future__ import annotations

from db.uow import UnitOfWork
from processor.adapters.sqs import Queue
from processor.domain.model import FINAL_STATUSES
from processor.jsonutil import dumps

LIMIT = 10_000


def requeue_unfinished(queue_url: str, limit: int = LIMIT) -> int:
    """Queue one message per unfinished order (oldest first, at most `limit`); the count."""
    final = sorted(s.value for s in FINAL_STATUSES)
    with UnitOfWork() as uow:
        unfinished = uow.reporting.stuck_orders(final, older_than_seconds=0, limit=limit)
    bodies = [(str(n), dumps({"order_id": str(o.order_id)})) for n, o in enumerate(unfinished)]
    failed = [error for _, error in Queue(queue_url).send_batch(bodies) if error is not None]
    if failed:
        raise RuntimeError(f"{len(failed)} re-queue message(s) not sent: {failed[0]}")
    return len(bodies)
