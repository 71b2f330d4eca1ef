"""`python -m processor admin reconcile [--json] [--fix]` and the scheduled reconciler function.

One run: every `admin check` finding (the stored data against the guarantees), then our
payments against the provider's. What it reads is bounded, so a million orders do not mean a
million provider calls:

- at most `max_orders` payments retrieved one by one: orders not final, changed in the last
  `recent_hours`, or with an authorisation that may still hold money;
- the provider's payments and refunds of one time window, listed in pages: from where the
  last run stopped (less an overlap, for events that arrive late) to now, at most
  `max_window_hours` wide (the first run looks back `recent_hours`).

`--fix` makes only the repairs that can neither lose money nor move it twice: record what the
provider says (a capture on an order being shipped, a refund made in its dashboard, a void),
re-send an unsent outbox record, void an authorisation whose order is cancelled or failed
(under the order's own void key, so a repeat voids nothing twice). The rest is reported with
what to do (processor/domain/reconciliation.py; README "Operate").
"""

from __future__ import annotations

import argparse
import contextlib
import functools
import logging
import sys
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import UUID

from db.errors import DatabaseError
from db.provider_events import ReconcilerRun
from db.reconciliation import PaymentToCheck
from processor import metrics
from processor.adapters.payments.base import PaymentState, TransientPaymentError
from processor.adapters.payments.ledger import PaymentLedger, ProviderPayment
from processor.bootstrap import Dependencies, dependencies
from processor.domain.model import FINAL_STATUSES, Status
from processor.domain.money import to_minor
from processor.domain.payment import PaymentStatus, void_key
from processor.domain.reconciliation import FINDING_KINDS, EventOutcome
from processor.jsonutil import dumps
from processor.observability import emit_metric
from processor.ops import invariants
from processor.ops.invariants import Finding
from processor.reconciliation import records

log = logging.getLogger(__name__)
UNCAPTURED = frozenset({PaymentStatus.AUTHORIZED, PaymentStatus.CAPTURING})


@dataclass(frozen=True)
class Options:
    fix: bool = False
    deadline_seconds: float = invariants.DEFAULT_DEADLINE_SECONDS
    limit: int = invariants.DEFAULT_LIMIT
    include_queues: bool = True
    max_orders: int = 200
    recent_hours: float = 24.0
    authorization_max_age_hours: float = 144.0  # Stripe voids after 7 days
    overlap_seconds: float = 600.0
    max_window_hours: float = 168.0


@dataclass
class Report:
    checked_at: str
    window_start: str
    window_end: str
    provider: str
    orders_checked: int = 0
    provider_calls: int = 0
    findings: list[Finding] = field(default_factory=list)
    repaired: list[Finding] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.findings

    def counts(self, items: list[Finding]) -> dict[str, int]:
        found: dict[str, int] = {}
        for item in items:
            found[item.kind] = found.get(item.kind, 0) + 1
        return found

    def as_dict(self) -> dict[str, Any]:
        return {
            **asdict(self),
            "findings": [{**asdict(f), "action": FINDING_KINDS[f.kind].action}
                         for f in self.findings],
            "ok": self.ok,
        }


class _Run:
    """One reconciliation: collects findings (once per kind and order) and makes repairs."""

    def __init__(self, deps: Dependencies, ledger: PaymentLedger | None, options: Options,
                 report: Report) -> None:
        self.deps, self.ledger, self.options, self.report = deps, ledger, options, report
        self._seen: set[tuple[str, str | None]] = set()

    def find(self, kind: str, detail: str, order_id: UUID | str | None = None) -> None:
        key = (kind, str(order_id) if order_id else None)
        if key not in self._seen:
            self._seen.add(key)
            self.report.findings.append(Finding(kind, detail, key[1]))

    def repair(self, kind: str, order_id: UUID, apply: Callable[[Any], records.Recorded]
               ) -> None:
        """Apply one repair in its own transaction; count it when it changed our records."""
        with self.deps.uow() as uow:
            result = apply(uow)
            uow.commit()
        if result.notified:
            self.deps.publisher.publish_notifications(order_id)
        if result.outcome == EventOutcome.APPLIED:
            self.report.repaired.append(Finding(kind, result.detail or "", str(order_id)))

    def compare_payment(self, ours: PaymentToCheck, theirs: ProviderPayment | None) -> None:
        order_id, status = ours.order_id, Status(ours.order_status)
        if theirs is None:
            self.find("payment_mismatch", f"{ours.provider_ref} is unknown to the provider",
                      order_id)
            return
        self.compare_amount(order_id, ours.total_amount, ours.order_currency, theirs)
        if theirs.state == PaymentState.CAPTURED and ours.status != PaymentStatus.CAPTURED:
            self.find("capture_not_recorded", f"captured {theirs.captured_minor} at the "
                      f"provider; order {status}, payment {ours.status}", order_id)
            if self.options.fix and status in records.SHIPPED_OR_SHIPPING:
                self.repair("capture_not_recorded", order_id, lambda uow: records.record_capture(
                    uow, order_id, theirs.captured_minor))
        elif theirs.state == PaymentState.AUTHORIZED:
            if status in (Status.CANCELLED, Status.PAYMENT_FAILED):
                self.find("authorization_not_voided", f"order {status} but its authorisation "
                          f"of {theirs.amount_minor} still holds money", order_id)
                if self.options.fix:
                    self.void(order_id, ours.provider_ref)
            elif ours.authorized_age_seconds > self.options.authorization_max_age_hours * 3600:
                days = ours.authorized_age_seconds / 86400
                self.find("authorization_expiring", f"authorised {days:.1f} days ago and not "
                          f"captured (order {status})", order_id)
        elif theirs.state == PaymentState.CANCELED and ours.status in UNCAPTURED \
                and status == Status.PAYMENT_CONFIRMED:
            self.find("authorization_lost", "the provider voided or expired the "
                      "authorisation this order still counts on", order_id)
        elif theirs.state == PaymentState.CANCELED and ours.status == PaymentStatus.AUTHORIZED \
                and self.options.fix:
            self.repair("authorization_not_voided", order_id,
                        lambda uow: records.record_void(uow, order_id))

    def compare_amount(self, order_id: UUID, total: Any, currency: str,
                       theirs: ProviderPayment) -> None:
        expected = to_minor(total, currency)
        if theirs.amount_minor != expected or theirs.currency != currency.lower():
            self.find("payment_amount_mismatch", f"{theirs.reference} is {theirs.amount_minor} "
                      f"{theirs.currency}; the order is {expected} {currency.lower()}", order_id)

    def void(self, order_id: UUID, reference: str) -> None:
        """Void at the provider under the order's void key (a repeat is answered, not
        repeated), then record the void."""
        result = self.deps.payments.cancel(void_key(order_id), reference)
        self.report.provider_calls += 1
        if result.state == PaymentState.CANCELED:
            self.repair("authorization_not_voided", order_id,
                        lambda uow: records.record_void(uow, order_id))


def _window(deps: Dependencies, options: Options, now: datetime) -> tuple[datetime, datetime]:
    with deps.uow() as uow:
        last = uow.provider_events.last_window_end()
    start = (last - timedelta(seconds=options.overlap_seconds)) if last else \
        now - timedelta(hours=options.recent_hours)
    return max(start, now - timedelta(hours=options.max_window_hours)), now


def ledger_for(deps: Dependencies) -> PaymentLedger | None:
    """The provider's books, where it keeps any: the simulator remembers only what its own
    process did, so with it only the stored data is checked."""
    from processor.adapters.payments.stripe_rest import StripeProvider

    if isinstance(deps.payments, StripeProvider):
        from processor.adapters.payments.ledger import StripeLedger

        return StripeLedger(deps.payments)
    return None


def reconcile(options: Options | None = None, deps: Dependencies | None = None,
              ledger: PaymentLedger | None = None) -> Report:
    """One run: findings, repairs with `fix`, its row in reconciler_runs, its metrics."""
    options = options or Options()
    deps = deps or dependencies()
    ledger = ledger if ledger is not None else ledger_for(deps)
    started = datetime.now(UTC)
    window_start, window_end = _window(deps, options, started)
    report = Report(started.isoformat(), window_start.isoformat(), window_end.isoformat(),
                    deps.payments.identifier)
    run = _Run(deps, ledger, options, report)
    check = invariants.check(options.deadline_seconds, options.limit, options.include_queues)
    for finding in check.findings:
        run.find(finding.kind, finding.detail, finding.order_id)
    if options.fix and any(f.kind == "unsent_outbox" for f in check.findings):
        _resend_outbox(run)
    with deps.uow() as uow:  # received by the webhook, whatever the provider
        for order_id, detail in uow.reconciliation.disputes_since(window_start, options.limit):
            run.find("disputed_payment", detail, order_id)
    if ledger is not None:
        try:
            _compare_with_provider(run, ledger, window_start, window_end)
        except TransientPaymentError as error:
            run.find("provider_unreachable", str(error))
        report.provider_calls += ledger.calls
    _record(deps, report, started, window_start, window_end)
    return report


def _resend_outbox(run: _Run) -> None:
    from processor.outbox import relay

    result = relay.publish(older_than_seconds=run.options.deadline_seconds,
                           limit=run.options.limit)
    run.report.repaired += [Finding("unsent_outbox", "re-sent")] * result.sent


def _compare_with_provider(run: _Run, ledger: PaymentLedger, start: datetime,
                           end: datetime) -> None:
    options, deps = run.options, run.deps
    final = sorted(s.value for s in FINAL_STATUSES)
    with deps.uow() as uow:
        candidates = uow.reconciliation.payments_to_check(
            deps.payments.identifier, final, end - timedelta(hours=options.recent_hours),
            options.max_orders)
    run.report.orders_checked = len(candidates)
    checked = set()
    for ours in candidates:
        run.compare_payment(ours, ledger.payment(ours.provider_ref))
        checked.add(ours.provider_ref)
    since, until = int(start.timestamp()), int(end.timestamp()) + 1
    _compare_listed_payments(run, [p for p in ledger.payments(since, until)
                                   if p.reference not in checked])
    _compare_refunds(run, ledger, since, until, start, end)


def _compare_listed_payments(run: _Run, listed: list[ProviderPayment]) -> None:
    """Payments the window lists that the per-order pass did not retrieve."""
    ids = [UUID(p.order_id) for p in listed if _is_uuid(p.order_id)]
    with run.deps.uow() as uow:
        orders = uow.reconciliation.orders(ids)
        ours = uow.reconciliation.payments_by_reference([p.reference for p in listed])
    for payment in listed:
        order = orders.get(UUID(payment.order_id)) if _is_uuid(payment.order_id) else None
        if order is None:
            run.find("unknown_order_payment", f"{payment.reference} ({payment.state}, "
                     f"{payment.amount_minor} {payment.currency}) names order "
                     f"{payment.order_id or '(none)'}", payment.order_id)
            continue
        before = len(run.report.findings)
        run.compare_amount(order.order_id, order.total_amount, order.currency, payment)
        recorded = ours.get(payment.reference)
        if recorded is None:
            if len(run.report.findings) == before:
                run.find("payment_mismatch", f"a second payment {payment.reference} "
                         f"({payment.state}) names this order", order.order_id)
        elif payment.state == PaymentState.CAPTURED and recorded[1] != PaymentStatus.CAPTURED:
            run.find("capture_not_recorded", f"captured {payment.captured_minor} at the "
                     f"provider; order {order.status}", order.order_id)
            if run.options.fix and Status(order.status) in records.SHIPPED_OR_SHIPPING:
                run.repair("capture_not_recorded", order.order_id, functools.partial(
                    records.record_capture, order_id=order.order_id,
                    captured_minor=payment.captured_minor))


def _compare_refunds(run: _Run, ledger: PaymentLedger, since: int, until: int,
                     start: datetime, end: datetime) -> None:
    listed = [r for r in ledger.refunds(since, until) if r.status in ("succeeded", "pending")]
    with run.deps.uow() as uow:
        known = uow.reconciliation.known_refunds([r.reference for r in listed])
        payments = uow.reconciliation.payments_by_reference(
            [r.payment_reference for r in listed if r.payment_reference])
        ours = uow.reconciliation.refunds_between(start, end, run.options.limit)
    for refund in listed:
        if refund.reference in known:
            continue
        owner = payments.get(refund.payment_reference or "")
        if owner is None:
            run.find("unknown_order_payment", f"refund {refund.reference} of "
                     f"{refund.amount_minor} {refund.currency} is for a payment we do not have")
            continue
        order_id = owner[0]
        run.find("refund_not_recorded", f"refund {refund.reference} of {refund.amount_minor} "
                 f"{refund.currency} made at the provider", order_id)
        if run.options.fix:
            run.repair("refund_not_recorded", order_id, functools.partial(
                records.record_refund, order_id=order_id, reference=refund.reference,
                amount_minor=refund.amount_minor, currency=refund.currency))
    at_provider = {r.reference for r in listed}
    for order_id, status, reference, age in ours:
        if status == "SUCCEEDED" and reference not in at_provider:
            run.find("refund_missing_at_provider", f"refund {reference} is recorded as "
                     "succeeded but the provider does not list it", order_id)
        elif status == "PENDING" and age > run.options.deadline_seconds:
            run.find("refund_missing_at_provider", f"refund pending for {age:.0f} s: the "
                     "provider's answer never came (a retry with its Idempotency-Key "
                     "finishes it)", order_id)


def _is_uuid(text: str | None) -> bool:
    try:
        UUID(str(text))
    except ValueError:
        return False
    return True


def _record(deps: Dependencies, report: Report, started: datetime, window_start: datetime,
            window_end: datetime) -> None:
    found, repaired = report.counts(report.findings), report.counts(report.repaired)
    with deps.uow() as uow:
        uow.provider_events.record_run(ReconcilerRun(
            started, datetime.now(UTC), window_start, window_end, report.orders_checked,
            report.provider_calls, found, repaired))
        uow.commit()
    for kind in metrics.RECONCILER_FINDINGS.values:
        emit_metric(metrics.RECONCILER_FINDINGS, found.get(kind, 0), kind=kind)
    emit_metric(metrics.RECONCILER_FINDINGS_TOTAL, len(report.findings))
    for kind, count in repaired.items():
        emit_metric(metrics.RECONCILER_REPAIRS, count, kind=kind)
    log.info("reconciled: %d finding(s), %d repair(s), %d provider call(s)",
             len(report.findings), len(report.repaired), report.provider_calls)


def run_scheduled() -> dict[str, Any]:
    """The scheduled function: RECONCILE_FIX (the stack's `reconcile_fix`) decides repairs."""
    import os

    fix = os.environ.get("RECONCILE_FIX", "false").lower() == "true"
    report = reconcile(Options(fix=fix))
    return {"findings": report.counts(report.findings),
            "repaired": report.counts(report.repaired),
            "provider_calls": report.provider_calls}


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--fix", action="store_true", help="make the safe repairs")
    parser.add_argument("--json", action="store_true", dest="reconcile_json")
    parser.add_argument("--deadline-seconds", type=float,
                        default=invariants.DEFAULT_DEADLINE_SECONDS)
    parser.add_argument("--limit", type=int, default=invariants.DEFAULT_LIMIT,
                        help="findings per rule")
    parser.add_argument("--max-orders", type=int, default=Options.max_orders,
                        help="payments retrieved one by one from the provider")
    parser.add_argument("--recent-hours", type=float, default=Options.recent_hours)
    parser.add_argument("--no-queues", action="store_true", help="skip the SQS depth checks")


def run(args: argparse.Namespace) -> int:
    """Exit 0 clean, 1 findings, 2 the run itself failed (as `admin check`)."""
    options = Options(fix=args.fix, deadline_seconds=args.deadline_seconds, limit=args.limit,
                      include_queues=not args.no_queues, max_orders=args.max_orders,
                      recent_hours=args.recent_hours)
    started = time.monotonic()
    try:
        # Logs and metric records go to stderr: stdout carries the report alone (scripts
        # parse the JSON whole).
        with contextlib.redirect_stdout(sys.stderr):
            report = reconcile(options)
    except DatabaseError as error:
        print(f"cannot read the database: {error}".strip(), file=sys.stderr)
        return 2
    if args.reconcile_json or getattr(args, "json", False):
        print(dumps(report.as_dict()))
    else:
        print(format_report(report, time.monotonic() - started))
    return 0 if report.ok else 1


def format_report(report: Report, seconds: float) -> str:
    lines = [f"reconciled {report.orders_checked} payment(s) with {report.provider} "
             f"({report.provider_calls} provider call(s), window {report.window_start} .. "
             f"{report.window_end}, {seconds:.1f} s)"]
    for finding in report.findings:
        who = f" {finding.order_id}" if finding.order_id else ""
        lines.append(f"{finding.kind}{who}: {finding.detail}")
        lines.append(f"  -> {FINDING_KINDS[finding.kind].action}")
    for repair in report.repaired:
        lines.append(f"repaired {repair.kind} {repair.order_id or ''}: {repair.detail}")
    lines.append("OK: no findings" if report.ok else f"{len(report.findings)} finding(s)")
    return "\n".join(lines)
