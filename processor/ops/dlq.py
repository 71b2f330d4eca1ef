"""Dead-letter queue admin: list, show, redrive and clear redundant messages
(`python -m processor admin dlq ...`).

Reading the DLQ changes its receive counts. SQS has no way to read a message without receiving
it, so `peek` (behind `dlq list` and `dlq show`) receives every message once, which adds one
to its `ApproximateReceiveCount`, and makes it visible again at once; the commands say so on
stderr each time. Nothing acts on those counts: the DLQ has no redrive policy of its own, and
`redrive` sends a fresh copy to the order queue, whose count starts at zero. The alternative,
moving each message to a second queue to read it, would change message ids and risk a loss
between the two queues for a figure nobody needs.

A dead letter is a *redundant copy* when its order is already final: under repeated worker
crashes a message can reach maxReceiveCount while another copy of it completed the order.
`list` marks them, `clear-redundant` deletes them, and redriving one changes nothing (the
processor ignores a message for a final order).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any
from uuid import UUID

from processor.adapters.sqs import Queue

READ_NOTE = (
    "note: SQS cannot read a message without receiving it: this look added one to each"
    " message's receive count and made every message visible again at once"
)


@dataclass(frozen=True)
class DeadLetter:
    message_id: str
    body: str
    reason: str
    receive_count: int
    receipt_handle: str
    order_id: UUID | None = None
    order_status: str | None = None  # None: no order named, or no such order

    @property
    def redundant(self) -> bool:
        """Its order is final: processing it again would change nothing."""
        from processor.domain.model import FINAL_STATUSES

        return self.order_status in {status.value for status in FINAL_STATUSES}


def peek(dlq_url: str, max_messages: int = 100) -> list[DeadLetter]:
    """Read DLQ messages without consuming them: each is received (its receive count rises by
    one, see the module docstring), then made visible again at once. Each letter carries its
    order's current status, read from the database, to tell redundant copies."""
    found: dict[str, dict[str, Any]] = {}
    dlq = Queue(dlq_url)
    try:
        while len(found) < max_messages:
            messages = dlq.receive(min(10, max_messages - len(found)), visibility_timeout=30)
            if not messages:
                break
            for message in messages:
                found[message["MessageId"]] = message
    finally:
        dlq.release([message["ReceiptHandle"] for message in found.values()])
    return _with_order_status(list(found.values()))


def order_id_of(body: str) -> UUID | None:
    """The order a dead letter names, if its body names one (poison often names none)."""
    try:
        payload = json.loads(body)
        return UUID(str(payload["order_id"]))
    except (ValueError, TypeError, KeyError, AttributeError, RecursionError):
        return None


def _with_order_status(messages: list[dict[str, Any]]) -> list[DeadLetter]:
    from db.uow import UnitOfWork

    named = {m["MessageId"]: order_id_of(m.get("Body", "")) for m in messages}
    statuses: dict[UUID, str | None] = {}
    with UnitOfWork() as uow:
        for known in {i for i in named.values() if i is not None}:
            statuses[known] = uow.orders.get_status(known)
    letters = []
    for message in messages:
        attributes = message.get("MessageAttributes") or {}
        reason = attributes.get("dead_letter_reason", {}).get(
            "StringValue", "max receives exceeded"
        )
        order_id = named[message["MessageId"]]
        letters.append(
            DeadLetter(
                message_id=message["MessageId"],
                body=message.get("Body", ""),
                reason=reason,
                receive_count=int(message.get("Attributes", {}).get("ApproximateReceiveCount", 1)),
                receipt_handle=message["ReceiptHandle"],
                order_id=order_id,
                order_status=statuses.get(order_id) if order_id else None,
            )
        )
    return letters


def redrive(dlq_url: str, queue_url: str, message_ids: set[str] | None = None) -> int:
    """Move messages (all, or those in `message_ids`) back to the order queue.

    Send first, delete second: a crash in between duplicates a message, which processing
    tolerates, rather than losing one."""
    queue = Queue(queue_url)

    def move(message: dict[str, Any]) -> None:
        queue.send(message["Body"])

    chosen = None if message_ids is None else (lambda m: m["MessageId"] in message_ids)
    return _take(dlq_url, chosen, move, None if message_ids is None else len(message_ids))


def clear_redundant(dlq_url: str) -> int:
    """Delete the dead letters whose order is final (redundant copies); the rest stay."""
    from db.uow import UnitOfWork
    from processor.domain.model import FINAL_STATUSES

    final = {status.value for status in FINAL_STATUSES}

    def redundant(message: dict[str, Any]) -> bool:
        order_id = order_id_of(message.get("Body", ""))
        if order_id is None:
            return False
        with UnitOfWork() as uow:
            return uow.orders.get_status(order_id) in final

    return _take(dlq_url, redundant, lambda _: None)


def _take(
    dlq_url: str,
    chosen: Callable[[dict[str, Any]], bool] | None,
    act: Callable[[dict[str, Any]], None],
    limit: int | None = None,
) -> int:
    """Scan the DLQ once: `act` on each chosen message (all with `chosen` None), then delete
    it; returns how many. Messages not chosen stay invisible until the scan ends, so the scan
    reaches chosen ones behind them (stopping at the first batch without a chosen message
    missed those), and are then released at once."""
    taken = 0
    seen: set[str] = set()
    skipped: list[str] = []
    dlq = Queue(dlq_url)
    try:
        while limit is None or taken < limit:
            received = dlq.receive(visibility_timeout=30)
            messages = [m for m in received if m["MessageId"] not in seen]
            if not messages:
                break
            for message in messages:
                seen.add(message["MessageId"])
                if chosen is None or chosen(message):
                    act(message)
                    dlq.delete([message["ReceiptHandle"]])
                    taken += 1
                else:
                    skipped.append(message["ReceiptHandle"])
    finally:
        dlq.release(skipped)
    return taken
