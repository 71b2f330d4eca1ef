"""Workers SIGKILLed at random moments while a stream of orders is processed."""

from __future__ import annotations

import random
import signal
import threading
import time
from uuid import uuid4

from tests.reliability.chaos.audit import Outcome, audit
from tests.reliability.chaos.client import order_body, submit
from tests.reliability.chaos.stack import Stack

# Slow steps, so that a random kill often lands inside one.
SLOW_STEPS = {"PAYMENT_LATENCY_MS": "30", "FULFILMENT_DELAY_SECONDS": "0.02"}


def worker_massacre(stack: Stack, orders: int = 150, kills: int = 8) -> Outcome:
    """Fault: `kills` SIGKILLs, at random moments, of one of the two workers processing a
    stream of `orders` orders; each killed worker is replaced at once. Must hold: every order
    completes with each step and charge once. Emails are at-least-once by design, so repeats
    (a kill between SES accepting an email and its mark) are counted, not forbidden: at most
    the emails in flight at the kill, one per relay thread (RELIABILITY.md: repeats per
    crash)."""
    stack.stop_workers()
    for _ in range(2):
        stack.start_worker(concurrency=2, **SLOW_STEPS)
    outcome = Outcome(
        "Workers SIGKILLed at random",
        f"{orders} orders, {kills} kills of 2 workers with slow steps (visibility timeout 2 s)",
    )
    run = uuid4().hex[:8]
    accepted: dict[str, str] = {}

    def produce() -> None:
        for n in range(orders):
            tag = f"massacre-{run}-{n}"
            result = submit(stack.api_url, order_body(tag), tag, outcome.started + 120)
            if result.order_id:
                accepted[tag] = result.order_id
            time.sleep(0.01)  # pacing: a stream, not one burst

    producer = threading.Thread(target=produce)
    producer.start()
    rng = random.Random(run)
    killed = 0
    while killed < kills and (producer.is_alive() or killed < kills // 2):
        time.sleep(rng.uniform(0.2, 0.8))  # a random moment, by design
        victims = stack.running_workers()
        if victims:
            rng.choice(victims).send_signal(signal.SIGKILL)
            killed += 1
            stack.start_worker(concurrency=2, **SLOW_STEPS)
    producer.join()
    outcome.figures["kills"] = killed
    audit(stack, outcome, accepted, exact_emails=False)
    if killed:
        repeats = outcome.figures.get("email_repeats", 0)
        outcome.figures["email_repeats_per_kill"] = round(repeats / killed, 2)
    return outcome.finish()
