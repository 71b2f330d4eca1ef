"""What each handled Stripe event does to our records (event type -> handler).

Every handler runs inside the transaction that claimed the event id, so an event's effects
and its "processed" mark commit together or not at all. The order comes from the
PaymentIntent's metadata (set when it was created) or, for charges and disputes, from the
PaymentIntent they belong to.
"""

from __future__ import annotations

import dataclasses
from typing import Any
from uuid import UUID

from db.provider_events import ProviderEvent
from processor.bootstrap import Dependencies
from processor.domain.payment import PaymentStatus
from processor.domain.reconciliation import EventOutcome
from processor.reconciliation import records
from processor.reconciliation.records import Recorded
from processor.webhooks.service import Handler


def _order(uow: Any, event: ProviderEvent) -> UUID | None:
    if event.order_id is not None:
        return event.order_id if uow.orders.get_status(event.order_id) else None
    if event.reference is None:
        return None
    found: UUID | None = uow.provider_events.order_for_reference(event.reference)
    return found


def _for_order(apply: Any) -> Handler:
    """A handler that needs our order: UNKNOWN_ORDER when the event names none of ours."""

    def handle(deps: Dependencies, uow: Any, event: ProviderEvent, obj: dict[str, Any]
               ) -> Recorded:
        order_id = _order(uow, event)
        if order_id is None:
            return Recorded(EventOutcome.UNKNOWN_ORDER,
                            f"{event.event_type} names no order of ours")
        result: Recorded = apply(uow, order_id, obj)
        return dataclasses.replace(result, order_id=order_id)

    return handle


def _succeeded(uow: Any, order_id: UUID, intent: dict[str, Any]) -> Recorded:
    from processor.adapters.payments.ledger import payment_from

    return records.record_capture(uow, order_id, payment_from(intent).captured_minor)


def _refunded(uow: Any, order_id: UUID, charge: dict[str, Any]) -> Recorded:
    """Each refund listed on the charge, once; without the list, only a comparison."""
    listed = (charge.get("refunds") or {}).get("data")
    if not isinstance(listed, list):
        payment = uow.payments.get(order_id)
        provider_total = int(charge.get("amount_refunded") or 0)
        if payment is not None and payment.refunded_minor == provider_total:
            return Recorded(EventOutcome.UNCHANGED)
        return Recorded(EventOutcome.DISAGREEMENT, f"{provider_total} refunded at the provider "
                        "(refunds not listed in the event): `admin reconcile` compares them")
    results = [records.record_refund(uow, order_id, str(r["id"]), int(r["amount"]),
                                     str(r.get("currency") or charge.get("currency") or ""))
               for r in listed if isinstance(r, dict) and r.get("status") != "failed"]
    for outcome in (EventOutcome.DISAGREEMENT, EventOutcome.APPLIED):
        chosen = [r for r in results if r.outcome == outcome]
        if chosen:
            return Recorded(outcome, "; ".join(r.detail or "" for r in chosen),
                            any(r.notified for r in results))
    return Recorded(EventOutcome.UNCHANGED)


def _disputed(uow: Any, order_id: UUID, dispute: dict[str, Any]) -> Recorded:
    """Nothing to record automatically: a chargeback is answered by a person, in time."""
    return Recorded(EventOutcome.DISAGREEMENT, f"dispute {dispute.get('id')} opened "
                    f"({dispute.get('reason') or 'no reason given'}) for "
                    f"{dispute.get('amount')} {dispute.get('currency') or ''}".strip())


HANDLERS: dict[str, Handler] = {
    "payment_intent.succeeded": _for_order(_succeeded),
    "payment_intent.amount_capturable_updated": _for_order(
        lambda uow, order_id, _: records.compare_progress(uow, order_id,
                                                          PaymentStatus.AUTHORIZED)),
    "payment_intent.payment_failed": _for_order(
        lambda uow, order_id, _: records.compare_progress(uow, order_id,
                                                          PaymentStatus.DECLINED)),
    "payment_intent.canceled": _for_order(lambda uow, order_id, _: records.record_void(
        uow, order_id)),
    "charge.refunded": _for_order(_refunded),
    "charge.dispute.created": _for_order(_disputed),
}
