"""Operator commands behind `python -m processor admin ...`.

Each command returns plain data; `emit` prints it as a readable table or, with `--json`, as
JSON for scripts. Against a deployed stack, `--stack NAME` reads the queue and topic from
`pulumi stack output --json`; the database needs `DATABASE_URL` (e.g. through a tunnel).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from typing import Any
from uuid import UUID

from processor.jsonutil import dumps

STACK_OUTPUT_ENV = {
    "queue_url": "ORDER_QUEUE_URL",
    "dlq_url": "ORDER_DLQ_URL",
    "notification_topic_arn": "NOTIFICATION_TOPIC_ARN",
}


def load_stack_environment(stack: str) -> dict[str, str]:
    """Export a deployed stack's endpoints as the environment variables the code reads."""
    pulumi = shutil.which("pulumi")
    if pulumi is None:
        raise SystemExit("the pulumi CLI is needed for --stack (or set the variables yourself)")
    completed = subprocess.run(  # noqa: S603 (fixed argv, no shell)
        [pulumi, "stack", "output", "--json", "--stack", stack],
        check=True,
        capture_output=True,
        text=True,
    )
    outputs = json.loads(completed.stdout)
    env = {var: str(outputs[key]) for key, var in STACK_OUTPUT_ENV.items() if key in outputs}
    os.environ.update(env)
    return env


def show_order(order_id: UUID) -> dict[str, Any]:
    from db.uow import UnitOfWork
    from processor.orders.service import get_order

    view = get_order(order_id)
    with UnitOfWork() as uow:
        view["payment"] = uow.reporting.payment(order_id)
        view["outbox"] = [e.__dict__ for e in uow.reporting.outbox_entries(order_id=order_id)]
    return view


def stuck_orders(older_than_seconds: float) -> list[dict[str, Any]]:
    from db.uow import UnitOfWork
    from processor.domain.model import FINAL_STATUSES

    final = sorted(s.value for s in FINAL_STATUSES)
    with UnitOfWork() as uow:
        return [s.__dict__ for s in uow.reporting.stuck_orders(final, older_than_seconds)]


def outbox_status() -> dict[str, Any]:
    from db.uow import UnitOfWork

    with UnitOfWork() as uow:
        unsent, oldest = uow.reporting.outbox_lag()
        given_up = uow.reporting.given_up_count()
        latest = uow.reporting.outbox_entries(given_up_only=True, limit=10)
        counts = uow.reporting.status_counts()
    return {
        "unsent": unsent,
        "oldest_unsent_seconds": round(oldest, 1),
        # Emails the relay stopped trying (SES refused them for good, or too often): the
        # reason, addresses masked, is each record's last_error.
        "given_up": given_up,
        "given_up_records": [e.__dict__ for e in latest],
        "orders": counts,
    }


def retry_given_up() -> dict[str, int]:
    """Give the given-up emails another round (once their cause is fixed); the sweeper, or
    `outbox --replay`, then sends them. Their events were published already and stay so."""
    from db.uow import UnitOfWork

    with UnitOfWork() as uow:
        count = uow.outbox.retry_given_up()
        uow.commit()
    return {"retrying": count}


def replay_outbox(progress: bool = True) -> dict[str, int]:
    """Publish every unsent record now (no grace), batch by batch, with progress on stderr.

    Queue messages the API sent without error are left alone until their confirm window ends,
    as the sweeper does: they are in the queue, and a copy would only be processed for nothing.
    """
    from processor.config import settings
    from processor.outbox import relay as outbox

    confirm_seconds = settings().order_message_confirm_seconds
    sent = failed = 0
    while True:
        result = outbox.publish(limit=outbox.BATCH, unconfirmed_after_seconds=confirm_seconds)
        sent, failed = sent + result.sent, failed + result.failed
        if progress:
            print(f"\rreplayed {sent} record(s), {failed} failed", end="", file=sys.stderr)
        if result.sent == 0:
            break
    if progress:
        print(file=sys.stderr)
    return {"sent": sent, "failed": failed}


def notifications(limit: int) -> list[dict[str, Any]]:
    from db.uow import UnitOfWork

    with UnitOfWork() as uow:
        entries = uow.reporting.outbox_entries(kind="notification", limit=limit)
    return [e.__dict__ for e in reversed(entries)]


def tail_notifications(limit: int, follow: bool, interval: float = 2.0) -> None:
    """Print the latest notifications, then (with follow) new ones as they are recorded."""
    seen = 0
    while True:
        for entry in notifications(limit):
            if entry["id"] > seen:
                sent = "sent" if entry["published_at"] else "UNSENT"
                when = f"{entry['created_at']:%H:%M:%S}"
                print(f"{when} {entry['order_id']} {entry['status']} {sent}")
                seen = entry["id"]
        if not follow:
            return
        time.sleep(interval)


def emit(data: Any, as_json: bool) -> None:
    """Print command results for people (aligned rows) or scripts (JSON)."""
    if as_json:
        print(dumps(data))
        return
    rows = data if isinstance(data, list) else [data]
    if not rows:
        print("(none)")
        return
    for row in rows:
        if isinstance(row, dict):
            width = max(len(str(k)) for k in row)
            for key, value in row.items():
                shown = dumps(value) if isinstance(value, list | dict) else value
                print(f"{key:<{width}}  {shown}")
            print()
        else:
            print(row)
