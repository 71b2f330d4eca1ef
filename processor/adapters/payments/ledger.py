"""The provider's side of the books, read for reconciliation: payments and refunds in a time
window, and one payment by reference. Every method counts its HTTP calls (`calls`), so a run
reports, and a benchmark bounds, what it cost.

Stripe lists newest first and pages with `starting_after`. Payments are read from the event
list (`/v1/events?created[gte]&created[lt]`): it is the one list both Stripe and localstripe
filter by time, and it is what Stripe recommends for finding missed webhooks. Refunds are read
from `/v1/refunds`, newest first, until one is older than the window.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any, Protocol

from processor.adapters.payments import stripe_rest
from processor.adapters.payments.base import PaymentState
from processor.adapters.payments.stripe_rest import StripeError, StripeProvider

PAGE_SIZE = 100


@dataclass(frozen=True)
class ProviderPayment:
    """A payment as the provider has it (amounts in minor units)."""

    reference: str
    order_id: str | None
    state: PaymentState
    amount_minor: int
    currency: str
    captured_minor: int
    created: int


@dataclass(frozen=True)
class ProviderRefund:
    reference: str
    payment_reference: str | None
    amount_minor: int
    currency: str
    status: str
    created: int


class PaymentLedger(Protocol):
    calls: int

    def payment(self, reference: str) -> ProviderPayment | None: ...

    def payments(self, since: int, until: int) -> Iterator[ProviderPayment]: ...

    def refunds(self, since: int, until: int) -> Iterator[ProviderRefund]: ...


def payment_from(intent: dict[str, Any]) -> ProviderPayment:
    """A PaymentIntent object (API answer or event snapshot) in neutral terms."""
    metadata = intent.get("metadata") or {}
    state = stripe_rest._STATES.get(str(intent.get("status") or ""), PaymentState.FAILED)
    return ProviderPayment(
        reference=str(intent["id"]),
        order_id=metadata.get("order_id") if isinstance(metadata, dict) else None,
        state=state,
        amount_minor=int(intent.get("amount") or 0),
        currency=str(intent.get("currency") or "").lower(),
        # localstripe leaves out `amount_received`; a succeeded intent captured its amount.
        captured_minor=int(intent.get("amount_received") or intent.get("amount") or 0)
        if state == PaymentState.CAPTURED else 0,
        created=int(intent.get("created") or 0),
    )


class StripeLedger:
    """Reads through the Stripe adapter's own HTTP client and status table (same key,
    timeouts, error mapping): a second client would drift from the first."""

    def __init__(self, stripe: StripeProvider) -> None:
        self._stripe = stripe
        self.calls = 0

    def _get(self, path: str, params: dict[str, Any] | None = None) -> dict[str, Any]:
        self.calls += 1
        query = "&".join(f"{k}={v}" for k, v in (params or {}).items())
        return self._stripe._call("GET", f"{path}?{query}" if query else path)

    def payment(self, reference: str) -> ProviderPayment | None:
        try:
            return payment_from(self._get(f"/v1/payment_intents/{reference}"))
        except StripeError as error:
            if error.status == 404:
                return None
            raise

    def payments(self, since: int, until: int) -> Iterator[ProviderPayment]:
        """Each PaymentIntent with an event in [since, until), as its latest event shows it."""
        latest: dict[str, tuple[int, dict[str, Any]]] = {}
        params: dict[str, Any] = {"created[gte]": since, "created[lt]": until,
                                  "limit": PAGE_SIZE}
        while True:
            page = self._get("/v1/events", params)
            for event in page.get("data", []):
                obj = (event.get("data") or {}).get("object") or {}
                if obj.get("object") != "payment_intent" or not obj.get("id"):
                    continue
                created = int(event.get("created") or 0)
                if obj["id"] not in latest or latest[obj["id"]][0] <= created:
                    latest[obj["id"]] = (created, obj)
            if not page.get("has_more") or not page.get("data"):
                break
            params = {**params, "starting_after": page["data"][-1]["id"]}
        for _, intent in latest.values():
            yield payment_from(intent)

    def refunds(self, since: int, until: int) -> Iterator[ProviderRefund]:
        params: dict[str, Any] = {"limit": PAGE_SIZE}
        while True:
            page = self._get("/v1/refunds", params)
            data = page.get("data", [])
            for refund in data:
                created = int(refund.get("created") or 0)
                if created < since:
                    return
                if created < until:
                    yield ProviderRefund(
                        reference=str(refund["id"]),
                        payment_reference=refund.get("payment_intent"),
                        amount_minor=int(refund.get("amount") or 0),
                        currency=str(refund.get("currency") or "").lower(),
                        status=str(refund.get("status") or ""),
                        created=created,
                    )
            if not page.get("has_more") or not data:
                return
            params = {**params, "starting_after": data[-1]["id"]}
