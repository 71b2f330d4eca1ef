"""What must hold after every scenario, and the `Outcome` that records whether it did."""

from __future__ import annotations

import json
import re
import time
from collections import Counter
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from processor.adapters.payments.simulator import simulated_reference
from processor.domain.model import FINAL_STATUSES, Status
from tests.helpers import wait_until
from tests.reliability.chaos.stack import Stack

UUID_PATTERN = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")


@dataclass
class Outcome:
    """What a scenario tried and what came out of it; `violations` must stay empty.

    Created when the scenario's measured part starts; `finish()` records its duration."""

    name: str
    tried: str
    figures: dict[str, Any] = field(default_factory=dict)
    violations: list[str] = field(default_factory=list)
    seconds: float = 0.0
    started: float = field(default_factory=time.monotonic, repr=False)

    def require(self, condition: bool, message: str) -> None:
        if not condition:
            self.violations.append(message)

    def finish(self) -> Outcome:
        self.seconds = round(time.monotonic() - self.started, 1)
        return self


def expected_subjects(order_id: str) -> dict[str, str]:
    """Email subject -> status, computed by the code that writes the emails."""
    from processor.adapters.notifications import OrderSummary, render_email

    stub: OrderSummary = {"order_id": order_id, "customer_email": "", "customer_name": "",
                          "items": [], "total_amount": Decimal(0)}
    return {render_email(stub, status.value, None)[0]: status.value for status in Status}


def email_counts(stack: Stack, order_ids: set[str]) -> Counter[tuple[str, str]]:
    """(order_id, status) -> emails sent, for the given orders."""
    counts: Counter[tuple[str, str]] = Counter()
    for message in stack.emails():
        found = UUID_PATTERN.search(message.get("body") or "")
        if not found or found.group(0) not in order_ids:
            continue
        order_id = found.group(0)
        status = expected_subjects(order_id).get(message.get("subject") or "", "?")
        counts[(order_id, status)] += 1
    return counts


def audit(
    stack: Stack,
    outcome: Outcome,
    accepted: dict[str, str],
    exact_emails: bool = True,
) -> None:
    """Every accepted order (tag -> order id) is final, exactly once, with one charge at most
    (under its own idempotency key) and one email per saved status; the reconciler
    agrees. Adds figures and violations to `outcome`.

    `exact_emails=False` where repeats are expected by design (a crash or outage between
    sending a relay batch and marking it sent): they are counted, not forbidden. The wait for
    the orders to settle allows for moto's throughput (about ten orders a second here)."""
    ids = set(accepted.values())
    _settle(stack, outcome, ids, timeout=30 + 0.3 * len(ids))
    _stored_once(stack, outcome, accepted)
    _charged_once(stack, outcome, ids)
    _emailed(stack, outcome, ids, exact_emails)
    _redundant_dead_letters_cleared(stack, outcome)
    report = stack.check(deadline_seconds=0)
    outcome.figures["checker_findings"] = len(report["findings"])
    for finding in report["findings"][:10]:
        outcome.violations.append(f"admin reconcile: {finding}")


def _redundant_dead_letters_cleared(stack: Stack, outcome: Outcome) -> None:
    """`dlq clear-redundant`, as the operator's routine: a message that reached
    maxReceiveCount while another copy completed its order (repeated worker kills do that) is
    no failure, and left in the DLQ it would count in the next scenario's checker report."""
    done = stack.processor_cli("admin", "--json", "dlq", "clear-redundant")
    outcome.require(done.returncode == 0, f"dlq clear-redundant failed: {done.stderr[-500:]}")
    if done.returncode == 0:
        cleared = json.loads(done.stdout.strip().splitlines()[-1])["cleared"]
        outcome.figures["redundant_dead_letters_cleared"] = cleared


def _settle(stack: Stack, outcome: Outcome, ids: set[str], timeout: float) -> None:
    """Wait until every order is final and the outbox has sent everything about it."""
    started = time.monotonic()

    def settled() -> bool:
        rows = stack.query(
            "SELECT count(*) FILTER (WHERE status <> ALL(%s)),"
            " (SELECT count(*) FROM outbox WHERE published_at IS NULL)"
            " FROM orders WHERE order_id::text = ANY(%s)",
            sorted(s.value for s in FINAL_STATUSES),
            sorted(ids),
        )
        return rows[0] == (0, 0)

    try:
        wait_until(settled, timeout, "every accepted order to be final and announced", 0.1)
    except AssertionError as error:
        outcome.violations.append(str(error))
    outcome.figures["settle_seconds"] = round(time.monotonic() - started, 2)


def _stored_once(stack: Stack, outcome: Outcome, accepted: dict[str, str]) -> None:
    """No accepted order is missing, no tag (logical order) is stored twice."""
    rows = stack.query(
        "SELECT order_id::text, status, customer_name FROM orders WHERE customer_name = ANY(%s)",
        sorted(accepted),
    )
    ids = set(accepted.values())
    lost = ids - {order_id for order_id, _, _ in rows}
    per_tag = Counter(name for _, _, name in rows)
    doubled = {tag: n for tag, n in per_tag.items() if n > 1}
    statuses = Counter(status for _, status, _ in rows)
    outcome.figures.update(
        accepted=len(ids),
        lost=len(lost),
        doubled=len(doubled),
        final_statuses=dict(statuses),
    )
    outcome.require(not lost, f"{len(lost)} accepted order(s) missing: {sorted(lost)[:5]}")
    outcome.require(not doubled, f"orders stored more than once: {list(doubled.items())[:5]}")


def _charged_once(stack: Stack, outcome: Outcome, ids: set[str]) -> None:
    """Every charge went to the provider under the order's own idempotency key."""
    payments = stack.query(
        "SELECT order_id::text, outcome, provider_ref FROM payments WHERE order_id::text = ANY(%s)",
        sorted(ids),
    )
    outcome.figures["charges"] = sum(1 for _, result, _ in payments if result == "CHARGED")
    wrong_ref = [
        oid
        for oid, result, ref in payments
        if result == "CHARGED"
        and ref != simulated_reference(f"order-{oid}-authorize")
    ]
    outcome.require(not wrong_ref, f"charges under another idempotency key: {wrong_ref[:5]}")


def _emailed(stack: Stack, outcome: Outcome, ids: set[str], exact: bool) -> None:
    """Each saved status was emailed, no unsaved one was; with `exact`, each only once."""
    history = stack.query(
        "SELECT order_id::text, status FROM order_status_history WHERE order_id::text = ANY(%s)",
        sorted(ids),
    )
    emails = email_counts(stack, ids)
    expected = Counter({(oid, status): 1 for oid, status in history})
    missing = [key for key in expected if emails[key] == 0]
    repeats = sum(n - 1 for n in emails.values() if n > 1)
    strays = [key for key in emails if key not in expected]
    outcome.figures.update(emails=sum(emails.values()), email_repeats=repeats)
    outcome.require(not missing, f"{len(missing)} saved status(es) never emailed: {missing[:3]}")
    outcome.require(not strays, f"emails about unsaved statuses: {strays[:3]}")
    if exact:
        outcome.require(repeats == 0, f"{repeats} email(s) sent twice")
