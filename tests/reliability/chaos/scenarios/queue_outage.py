"""SQS, SES and SNS unreachable while orders are processed and placed."""

from __future__ import annotations

import time
from uuid import uuid4

from tests.reliability.chaos.audit import Outcome, audit
from tests.reliability.chaos.client import place_orders
from tests.reliability.chaos.stack import Stack


def queue_outage(
    stack: Stack, in_flight: int = 10, during: int = 10, outage_seconds: float = 2.0
) -> Outcome:
    """Fault: the proxy cuts moto off for `outage_seconds` (live connections reset) right after
    `in_flight` orders were placed, and `during` more are placed while it is down. Must hold:
    those are still accepted with their queue messages held in the outbox, and every order
    completes once the endpoint is back, with the worker alive throughout."""
    outcome = Outcome(
        "Queue (and email) endpoint unavailable",
        f"{in_flight} orders in flight and {during} placed during a {outage_seconds:g} s outage",
    )
    stack.ensure_worker()
    run = uuid4().hex[:8]
    accepted = place_orders(stack.api_url, f"sqs-{run}-before", in_flight, outcome.started + 30)
    stack.proxy.down()
    down_at = time.monotonic()
    try:
        placed = place_orders(stack.api_url, f"sqs-{run}-during", during, outcome.started + 60)
        refused = [tag for tag, order_id in placed.items() if not order_id]
        outcome.require(not refused, f"not accepted during outage: {refused[:3]}")
        unsent = stack.query(
            "SELECT count(*) FROM outbox WHERE kind = 'order' AND published_at IS NULL"
            " AND order_id::text = ANY(%s)",
            [order_id for order_id in placed.values() if order_id],
        )[0][0]
        outcome.figures["queue_messages_held_in_outbox"] = unsent
        outcome.require(unsent == during, f"only {unsent} of {during} messages held back")
        time.sleep(max(0.0, down_at + outage_seconds - time.monotonic()))  # the outage lasts
    finally:
        stack.proxy.up()
    up_at = time.monotonic()
    outcome.figures["outage_seconds"] = round(up_at - down_at, 2)
    accepted.update(placed)
    audit(stack, outcome, {tag: i for tag, i in accepted.items() if i}, exact_emails=False)
    outcome.figures["drain_seconds"] = round(time.monotonic() - up_at, 2)
    outcome.require(bool(stack.running_workers()), "the worker died")
    return outcome.finish()
