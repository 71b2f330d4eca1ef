"""`python -m processor admin check`: prove, from the stored data, that nothing was lost or
doubled. Run it after an incident, a redrive or a chaos run; it exits 1 when it finds anything.

Rules (each one a guarantee from the README turned into a query):

- `stale_order`: not in a final state and unchanged for longer than the deadline (lost work).
- `invalid_history`: the history is not a path of `domain.TRANSITIONS` from PENDING ending
  at the current status (a skipped, repeated or reordered step).
- `duplicate_outbox`: more than one record for one (kind, order, status) (a doubled email or
  queue message).
- `missing_notification` / `orphan_notification`: a saved status without its notification, or
  a notification for a status the order never had.
- `unqueued_order`: an order without its queue-message record.
- `unsent_outbox`: a record still unsent after the deadline (the sweeper is not delivering).
- `total_mismatch`: the stored total is not the exact sum of quantity x unit price.
- `payment_mismatch`: the payment outcome does not match the status (e.g. shipped without a
  charge, cancelled after one) or charged a different amount than the total.
- `dead_letters` / `queue_unreachable`: with queue URLs configured, messages waiting in the DLQ
  (someone must look) or queues that could not be read. Queue depths are reported either way.

The database is read in one read-only REPEATABLE READ transaction: one consistent snapshot, and
the checker can never write.
"""

from __future__ import annotations

import argparse
import sys
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from typing import Any

from db.checks import Snapshot, read_only_snapshot
from db.errors import DatabaseError
from processor.adapters.sqs import Queue
from processor.config import settings
from processor.domain.model import FINAL_STATUSES, TRANSITIONS, Status
from processor.jsonutil import dumps

DEFAULT_DEADLINE_SECONDS = 300.0
DEFAULT_LIMIT = 100

# The payment status each order status allows ("NONE": no payment row). Each payment answer is
# recorded in the same transaction as the order's status change it causes, so only the intents
# (*ING) can be seen beside the status before it.
PAYMENT_STATUSES: dict[Status, frozenset[str]] = {
    Status.PENDING: frozenset({"NONE"}),
    Status.PROCESSING: frozenset({"NONE", "AUTHORIZING"}),  # not started / not yet answered
    Status.PAYMENT_CONFIRMED: frozenset({"AUTHORIZED", "CAPTURING", "VOIDING"}),
    Status.FULFILLED: frozenset({"CAPTURED"}),
    Status.COMPLETED: frozenset({"CAPTURED"}),
    Status.REFUNDED: frozenset({"CAPTURED"}),
    Status.PAYMENT_FAILED: frozenset({"DECLINED", "CAPTURE_FAILED"}),
    Status.CANCELLED: frozenset({"NONE", "VOIDED"}),
}


@dataclass(frozen=True)
class Finding:
    kind: str
    detail: str
    order_id: str | None = None


@dataclass
class CheckReport:
    checked_at: str
    deadline_seconds: float
    counts: dict[str, int]
    queues: dict[str, Any] = field(default_factory=dict)
    findings: list[Finding] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.findings

    def as_dict(self) -> dict[str, Any]:
        return {**asdict(self), "ok": self.ok}


def valid_paths() -> list[str]:
    """Every `PENDING>...>LAST|LAST` string a correct order can have at any moment."""
    found: list[str] = []

    def walk(path: list[Status]) -> None:
        found.append(">".join(path) + "|" + path[-1])
        for target in sorted(TRANSITIONS[path[-1]]):
            walk([*path, target])

    walk([Status.PENDING])
    return found


def allowed_payments() -> list[str]:
    return [f"{status}:{payment}" for status, ok in PAYMENT_STATUSES.items() for payment in ok]


def check(
    deadline_seconds: float = DEFAULT_DEADLINE_SECONDS,
    limit: int = DEFAULT_LIMIT,
    include_queues: bool = True,
) -> CheckReport:
    """Scan the database (and the queues when configured); `limit` caps rows per rule."""
    with read_only_snapshot() as snapshot:
        report = _check_database(snapshot, deadline_seconds, limit)
    if include_queues:
        _check_queues(report)
    return report


def _check_database(snapshot: Snapshot, deadline: float, limit: int) -> CheckReport:
    q = snapshot.checks
    report = CheckReport(
        checked_at=datetime.now(UTC).isoformat(), deadline_seconds=deadline, counts=q.counts()
    )
    add = report.findings.append
    final = sorted(s.value for s in FINAL_STATUSES)
    for stuck in snapshot.reporting.stuck_orders(final, deadline, limit):
        detail = f"{stuck.status} and unchanged for {stuck.age_seconds:.0f} s"
        add(Finding("stale_order", detail, str(stuck.order_id)))
    for order_id, status, path in q.invalid_histories(valid_paths(), limit):
        detail = f"status {status}, history {path or '(empty)'}"
        add(Finding("invalid_history", detail, str(order_id)))
    for kind, order_id, status, copies in q.duplicate_outbox(limit):
        add(Finding("duplicate_outbox", f"{copies} {kind} records for {status}", str(order_id)))
    for order_id, status in q.missing_notifications(limit):
        add(Finding("missing_notification", f"no notification for {status}", str(order_id)))
    for order_id, status in q.orphan_notifications(limit):
        add(Finding("orphan_notification", f"notification for unsaved {status}", str(order_id)))
    for order_id in q.unqueued_orders(limit):
        add(Finding("unqueued_order", "no queue-message record", str(order_id)))
    for record_id, kind, order_id, status, age, attempts, error in q.unsent_outbox(deadline, limit):
        detail = f"{kind} record {record_id} ({status}) unsent for {age:.0f} s"
        detail += f", {attempts} attempt(s)" + (f", last error: {error[:120]}" if error else "")
        add(Finding("unsent_outbox", detail, str(order_id)))
    for order_id, total, computed, items in q.total_mismatches(limit):
        detail = f"total {total} but {items} item(s) sum to {computed}"
        add(Finding("total_mismatch", detail, str(order_id)))
    for order_id, status, outcome, amount, total in q.payment_mismatches(allowed_payments(), limit):
        detail = f"status {status} with payment {outcome or 'none'}"
        if amount is not None and amount != total:
            detail += f", charged {amount} for a total of {total}"
        add(Finding("payment_mismatch", detail, str(order_id)))
    return report


def _check_queues(report: CheckReport) -> None:
    config = settings()
    for name, url in (("queue", config.queue_url), ("dlq", config.dlq_url)):
        if not url:
            continue
        try:
            depth = Queue(url).depth()
        except Exception as error:
            report.findings.append(Finding("queue_unreachable", f"{name}: {error}"))
            continue
        report.queues[name] = depth
        waiting = sum(depth.values())
        if name == "dlq" and waiting:
            detail = f"{waiting} message(s) in the DLQ: `python -m processor admin dlq list`"
            report.findings.append(Finding("dead_letters", detail))


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Options of `admin check` (its own `--json` too, so it works after the subcommand)."""
    parser.add_argument(
        "--deadline-seconds",
        type=float,
        default=DEFAULT_DEADLINE_SECONDS,
        help="how long an order may stay unfinished / a record unsent (default 300)",
    )
    parser.add_argument("--limit", type=int, default=DEFAULT_LIMIT, help="findings per rule")
    parser.add_argument("--no-queues", action="store_true", help="skip the SQS depth checks")
    parser.add_argument("--json", action="store_true", dest="check_json", help="JSON output")


def run(args: argparse.Namespace) -> int:
    """Print the report; exit status 1 when there are findings (for cron, CI, runbooks) and 2
    when the check itself could not run, so "no database" is never mistaken for a finding."""
    try:
        report = check(args.deadline_seconds, args.limit, include_queues=not args.no_queues)
    except DatabaseError as error:
        print(f"cannot read the database: {error}".strip(), file=sys.stderr)
        return 2
    if getattr(args, "check_json", False) or getattr(args, "json", False):
        print(dumps(report.as_dict()))
    else:
        print(format_report(report))
    return 0 if report.ok else 1


def format_report(report: CheckReport) -> str:
    counts = ", ".join(f"{n} {name.replace('_', ' ')}" for name, n in report.counts.items())
    lines = [f"checked {counts} (deadline {report.deadline_seconds:g} s)"]
    for name, depth in report.queues.items():
        lines.append(f"{name}: " + ", ".join(f"{n} {k}" for k, n in depth.items()))
    for finding in report.findings:
        who = f" {finding.order_id}" if finding.order_id else ""
        lines.append(f"{finding.kind}{who}: {finding.detail}")
    lines.append("OK: no findings" if report.ok else f"{len(report.findings)} finding(s)")
    return "\n".join(lines)
