"""PostgreSQL down for longer than a message's retry budget."""

from __future__ import annotations

import time
from collections import Counter
from uuid import uuid4

from tests.helpers import wait_until
from tests.reliability.chaos.audit import Outcome, audit
from tests.reliability.chaos.client import place_orders
from tests.reliability.chaos.stack import Stack


def database_outage_beyond_retries(stack: Stack, orders: int = 10) -> Outcome:
    """Fault: the database stays down while a worker receives `orders` queued messages, each
    failing until SQS's redrive policy (maxReceiveCount 5, exponential visibility backoff)
    moves it to the DLQ. Must hold: the orders are safe in the database, `admin check` reports
    every one of them and the dead letters, and `python -m processor admin dlq redrive` finishes
    them once.

    The worker stops before the database returns: its sweeper would resend the messages of the
    orders still PENDING at once and finish some of them before the checker looks (as it
    does in production, but then the check would not be of the state the outage left)."""
    stack.stop_workers()
    outcome = Outcome(
        "PostgreSQL down longer than the retry budget",
        f"{orders} queued orders, database stopped until their messages are dead-lettered,"
        " then `dlq redrive`",
    )
    accepted = place_orders(stack.api_url, f"long-{uuid4().hex[:8]}", orders, outcome.started + 30)
    dlq = stack.env["ORDER_DLQ_URL"]
    stack.stop_database()
    try:
        stack.start_worker()
        wait_until(lambda: stack.queue_depth(dlq) >= orders, 120, "the DLQ to take them", 0.5)
        stack.stop_workers()
    finally:
        stack.start_database()
    outcome.figures["outage_seconds"] = round(time.monotonic() - outcome.started, 1)
    outcome.figures["dead_lettered"] = stack.queue_depth(dlq)
    kinds = Counter(f["kind"] for f in stack.check(deadline_seconds=0)["findings"])
    outcome.figures["checker_before_redrive"] = dict(kinds)
    outcome.require(
        kinds["dead_letters"] == 1 and kinds["stale_order"] == orders,
        f"the checker should report the dead letters and every stuck order: {dict(kinds)}",
    )
    redrive = stack.processor_cli("admin", "dlq", "redrive", timeout=120)
    outcome.require(redrive.returncode == 0, f"dlq redrive failed: {redrive.stderr[-500:]}")
    stack.start_worker()
    audit(stack, outcome, accepted, exact_emails=False)
    return outcome.finish()
