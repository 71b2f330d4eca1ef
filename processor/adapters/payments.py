"""Payment provider interface and the deterministic simulator used by default.

Providers must treat `idempotency_key` as Stripe does: the same key never charges twice.
The simulator's outcome depends only on its inputs, so a retry after a crash gets the same
answer and the same charge reference.
"""

from __future__ import annotations

import hashlib
import time
from dataclasses import dataclass
from decimal import Decimal
from typing import Protocol

from processor.config import Settings
from processor.observability import scrub


class TransientPaymentError(Exception):
    """The provider could not answer (timeout, 5xx); the charge may be retried.

    Its text is the provider's, scrubbed of addresses on the way in: the processor logs it
    (with its traceback) when the message is retried, so a provider quoting the card holder's
    email must not put it in the logs."""

    def __init__(self, message: str) -> None:
        super().__init__(scrub(message))


@dataclass(frozen=True)
class ChargeResult:
    approved: bool
    reference: str | None = None
    decline_reason: str | None = None


class PaymentProvider(Protocol):
    def charge(
        self, idempotency_key: str, amount: Decimal, customer_email: str, attempt: int
    ) -> ChargeResult: ...


def _fraction(*parts: object) -> float:
    digest = hashlib.sha256("|".join(map(str, parts)).encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2**64


class SimulatedPaymentProvider:
    """Deterministic stand-in for a card processor.

    Declines: email containing the decline tag (default `+decline`), the configured decline
    amount, or a stable `decline_rate` share of keys. Transient errors: email containing
    `+flaky` fails the first two attempts, `+unavailable` always fails, and a stable
    `transient_error_rate` share of (key, attempt) pairs fails.
    """

    def __init__(self, settings: Settings) -> None:
        self._settings = settings
        self.charges: dict[str, ChargeResult] = {}
        self.calls = 0

    def charge(
        self, idempotency_key: str, amount: Decimal, customer_email: str, attempt: int
    ) -> ChargeResult:
        self.calls += 1
        s = self._settings
        if s.payment_latency_ms:
            time.sleep(s.payment_latency_ms / 1000)
        if "+unavailable" in customer_email or ("+flaky" in customer_email and attempt < 2):
            raise TransientPaymentError("payment provider unavailable (simulated)")
        if _fraction("transient", idempotency_key, attempt) < s.payment_transient_error_rate:
            raise TransientPaymentError("payment provider timed out (simulated)")
        if idempotency_key in self.charges:
            return self.charges[idempotency_key]
        result = self._decide(idempotency_key, amount, customer_email)
        self.charges[idempotency_key] = result
        return result

    def _decide(self, key: str, amount: Decimal, customer_email: str) -> ChargeResult:
        s = self._settings
        if s.payment_decline_email_tag and s.payment_decline_email_tag in customer_email:
            return ChargeResult(False, decline_reason="card_declined")
        if s.payment_decline_amount is not None and amount == s.payment_decline_amount:
            return ChargeResult(False, decline_reason="amount_not_allowed")
        if _fraction("decline", key) < s.payment_decline_rate:
            return ChargeResult(False, decline_reason="insufficient_funds")
        reference = "ch_sim_" + hashlib.sha256(key.encode()).hexdigest()[:24]
        return ChargeResult(True, reference=reference)
