"""The only worker SIGKILLed in the middle of an order."""

from __future__ import annotations

import signal
import time
from uuid import uuid4

from tests.helpers import LIFECYCLE, wait_until
from tests.reliability.chaos.audit import Outcome, audit
from tests.reliability.chaos.client import order_body, submit
from tests.reliability.chaos.stack import Stack

# The setting that makes each phase last (a minute) long enough to be killed inside it.
SLOW_STEP = {"charging": "PAYMENT_LATENCY_MS", "fulfilling": "FULFILMENT_DELAY_SECONDS"}


def worker_kill(stack: Stack, phase: str) -> Outcome:
    """Fault: SIGKILL of the only worker inside a step (`charging`: during the provider call,
    its intent committed; `fulfilling`: after the authorisation committed). Must hold: a
    replacement finishes the order once the message's 2 s visibility timeout expires, with
    every step, one payment (under the order's own keys) and each email exactly once."""
    stack.stop_workers()
    victim = stack.start_worker(concurrency=1, sweep_interval=0, **{SLOW_STEP[phase]: "60000"})
    outcome = Outcome(
        f"Worker SIGKILLed while {phase}",
        "one order; `python -m processor worker --visibility-timeout 2` killed mid-order",
    )
    tag = f"kill-{phase}-{uuid4().hex[:8]}"
    order_id = submit(stack.api_url, order_body(tag), tag, outcome.started + 30).order_id
    assert order_id, "order not accepted"
    if phase == "charging":
        wait_until(lambda: _charge_in_progress(stack, order_id), 30, "the charge to start")
    else:
        wait_until(
            lambda: stack.status(order_id) == "PAYMENT_CONFIRMED", 30, "the charge to commit"
        )
    victim.send_signal(signal.SIGKILL)
    victim.wait(timeout=10)
    killed_at = time.monotonic()
    stack.start_worker()
    wait_until(lambda: stack.status(order_id) == "COMPLETED", 30, "the order to complete")
    outcome.figures["completed_seconds_after_kill"] = round(time.monotonic() - killed_at, 2)
    path = [s for (s,) in stack.query(
        "SELECT status FROM order_status_history WHERE order_id = %s ORDER BY id", order_id
    )]  # fmt: skip
    outcome.require(path == list(LIFECYCLE), f"history {path}")
    payments = stack.query("SELECT outcome FROM payments WHERE order_id = %s", order_id)
    outcome.require(payments == [("CHARGED",)], f"payments {payments}")
    audit(stack, outcome, {tag: order_id}, exact_emails=True)
    return outcome.finish()


def _charge_in_progress(stack: Stack, order_id: str) -> bool:
    """The order is PROCESSING with its authorisation intent committed (the provider call is
    under way; no transaction stays open during it)."""
    rows = stack.query(
        "SELECT o.status, p.status FROM orders o JOIN payments p USING (order_id)"
        " WHERE o.order_id = %s",
        order_id,
    )
    return rows == [("PROCESSING", "AUTHORIZING")]
