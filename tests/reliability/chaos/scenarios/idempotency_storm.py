"""Many concurrent creates sharing a few Idempotency-Keys."""

from __future__ import annotations

import random
import threading
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from typing import Any
from uuid import uuid4

from tests.reliability.chaos.audit import Outcome, audit
from tests.reliability.chaos.client import NO_ANSWER, http_call, order_body
from tests.reliability.chaos.stack import Stack

# One planned request: (tag, body, Idempotency-Key or None).
Request = tuple[str, dict[str, Any], str | None]
# One answer: (tag, status or 0 for no answer, body, whether it was a replay).
Answer = tuple[str, int, Any, bool]


def idempotency_storm(
    stack: Stack, requests: int = 200, keys: int = 20, keyed_share: float = 1.0, threads: int = 32
) -> Outcome:
    """Fault: `requests` creates at once, `keyed_share` of them spread over `keys` shared
    Idempotency-Keys (same body per key), the rest without a key. Must hold: every request
    answered 201, exactly `keys + unkeyed` orders, one original response per key and the
    others replays of it."""
    keyed = int(requests * keyed_share)
    prefix = f"storm-{uuid4().hex[:8]}"
    plan = [_planned(prefix, n, keys if n < keyed else None) for n in range(requests)]
    random.shuffle(plan)
    outcome = Outcome(
        "Concurrent creates with shared Idempotency-Keys",
        f"{requests} POST /orders, {threads} at a time, {keyed} of them over {keys} shared keys",
    )
    answers = _fire_together(stack.api_url, plan, threads)
    outcome.figures["requests_per_second"] = round(len(plan) / (time.monotonic() - outcome.started))
    accepted = _one_order_per_key(outcome, answers)
    expected = keys + (requests - keyed)
    stored = stack.query("SELECT count(*) FROM orders WHERE customer_name LIKE %s", prefix + "-%")
    outcome.figures.update(expected_orders=expected, stored_orders=stored[0][0])
    outcome.require(stored[0][0] == expected, f"{stored[0][0]} orders stored, {expected} expected")
    audit(stack, outcome, accepted)
    return outcome.finish()


def _planned(prefix: str, n: int, keys: int | None) -> Request:
    """Request `n`: over one of `keys` shared keys (the key is its tag), or unkeyed."""
    if keys is None:
        tag = f"{prefix}-free-{n}"
        return tag, order_body(tag), None
    key = f"{prefix}-{n % keys}"
    return key, order_body(key), key


def _one_order_per_key(outcome: Outcome, answers: list[Answer]) -> dict[str, str]:
    """Every request was answered 201, each tag (key) with one order id and exactly one
    original (not replayed) response: tag -> its order id."""
    statuses = Counter(status for _, status, _, _ in answers)
    outcome.figures["responses"] = dict(sorted(statuses.items()))
    outcome.require(set(statuses) == {201}, f"non-201 answers: {dict(statuses)}")
    by_tag: dict[str, set[str]] = {}
    originals: Counter[str] = Counter()
    for tag, status, data, replayed in answers:
        if status == 201:
            by_tag.setdefault(tag, set()).add(data["order_id"])
            originals[tag] += not replayed
    split = {tag: ids for tag, ids in by_tag.items() if len(ids) > 1}
    outcome.require(not split, f"one key, several orders: {list(split.items())[:3]}")
    not_once = {tag: n for tag, n in originals.items() if n != 1}
    outcome.require(not not_once, f"keys without exactly one original response: {not_once}")
    return {tag: next(iter(ids)) for tag, ids in by_tag.items()}


def _fire_together(api_url: str, plan: list[Request], threads: int) -> list[Answer]:
    """Send every request, `threads` at a time; the first `threads` leave at the same moment."""
    go = threading.Event()

    def fire(request: Request) -> Answer:
        tag, body, key = request
        go.wait(timeout=30)
        try:
            status, data, headers = http_call(
                api_url, "POST", "/orders", body, {"Idempotency-Key": key} if key else None
            )
        except NO_ANSWER as error:  # counted as "no answer" (0)
            return tag, 0, repr(error), False
        return tag, status, data, headers.get("idempotent-replayed") == "true"

    with ThreadPoolExecutor(max_workers=threads) as pool:
        futures = [pool.submit(fire, request) for request in plan]
        go.set()
        return [future.result() for future in futures]
