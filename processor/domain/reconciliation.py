"""The names reconciliation speaks in: what a provider event did to our records, and each kind
of finding the reconciler reports, with what an operator does about it.

Pure declarations: the webhook handler, the reconciler, the metric catalogue (one metric value
per kind) and the README's Operate table all read them from here.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum


class EventOutcome(StrEnum):
    """What one provider event did (stored in provider_events.outcome)."""

    APPLIED = "applied"  # our records now say what the provider says
    UNCHANGED = "unchanged"  # they already did
    STALE = "stale"  # older news than what we hold: an event never moves an order backwards
    IGNORED = "ignored"  # a type we do not act on
    DISAGREEMENT = "disagreement"  # provider and we disagree, nothing safe to do: an operator
    UNKNOWN_ORDER = "unknown_order"  # the event names no order of ours


@dataclass(frozen=True)
class FindingKind:
    """One kind of finding: its name, whether `--fix` repairs it, and what to do."""

    name: str
    action: str
    repairable: bool = False


# `admin check` (processor/ops/invariants.py): the stored data against the guarantees.
CHECK_KINDS = (
    FindingKind("stale_order", "look at the order (`admin order ID`): its step keeps failing "
                "or its message was lost; `admin outbox --replay` re-sends a lost one"),
    FindingKind("invalid_history", "a bug: report it with `admin order ID`; do not edit rows"),
    FindingKind("duplicate_outbox", "a bug (a doubled email or message): report it"),
    FindingKind("missing_notification", "a saved status nobody heard of: report it"),
    FindingKind("orphan_notification", "an email about a status never saved: report it"),
    FindingKind("unqueued_order", "an order nothing will process: report it"),
    FindingKind("unsent_outbox", "the sweeper is not delivering: check the outbox-lag alarm; "
                "`--fix` re-sends the record", repairable=True),
    FindingKind("total_mismatch", "a bug in totals: report it, refund by hand if charged"),
    FindingKind("payment_mismatch", "the payment row contradicts the status: compare with the "
                "provider's dashboard before acting"),
    FindingKind("dead_letters", "read them (`dlq list`), fix the cause, `dlq redrive`"),
    FindingKind("queue_unreachable", "check the queue URL and the function's permissions"),
)

# The provider compared with our records.
PROVIDER_KINDS = (
    FindingKind("authorization_expiring", "capture or cancel the order soon: the provider "
                "voids an uncaptured authorisation after 7 days"),
    FindingKind("capture_not_recorded", "the provider captured what we did not record: "
                "`--fix` records it (forward states only); otherwise refund or ship by hand",
                repairable=True),
    FindingKind("refund_not_recorded", "a refund made at the provider (its dashboard): "
                "`--fix` records it on the order", repairable=True),
    FindingKind("refund_missing_at_provider", "our refund is not at the provider: check its "
                "dashboard; refund there or mark ours failed by hand"),
    FindingKind("authorization_not_voided", "the order is cancelled or failed but its "
                "authorisation still holds money: `--fix` voids it", repairable=True),
    FindingKind("authorization_lost", "the provider voided or expired an authorisation our "
                "order still counts on: ask the customer to pay again, or cancel the order"),
    FindingKind("unknown_order_payment", "a payment names an order we do not have: find who "
                "created it; refund it at the provider if it took money"),
    FindingKind("payment_amount_mismatch", "the payment's amount or currency differs from the "
                "order's: refund or cancel at the provider, then fix the order by hand"),
    FindingKind("disputed_payment", "a chargeback was opened: answer it in the provider's "
                "dashboard before its deadline"),
    FindingKind("provider_unreachable", "the provider API failed during the run: the next run "
                "retries; check its status page and the secret key"),
)

FINDING_KINDS: dict[str, FindingKind] = {k.name: k for k in (*CHECK_KINDS, *PROVIDER_KINDS)}
REPAIRABLE = frozenset(name for name, kind in FINDING_KINDS.items() if kind.repairable)
