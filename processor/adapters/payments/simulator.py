"""The deterministic payment simulator: the default provider, offline everywhere.

Its answers depend only on the request, so a repeated call (same idempotency key, after a
crash or in another process) gets the same answer and the same references, as Stripe's
idempotency keys guarantee. Test data means what it means on Stripe: `pm_card_visa` approves,
`pm_card_chargeDeclined` declines (`card_declined`), `pm_card_authenticationRequired` needs
3-D Secure. The email tags of the seed keep working: the decline tag (default `+decline`)
declines, `+flaky` fails the first two attempts transiently, `+unavailable` always does, and
`+expired` authorises but the capture is refused (an expired authorisation).
"""

from __future__ import annotations

import hashlib
import threading
import time
from collections.abc import Mapping

from processor.adapters.payments.base import (
    Authorization,
    InvalidWebhook,
    PaymentProvider,
    PaymentResult,
    PaymentState,
    RefundResult,
    TransientPaymentError,
    WebhookAction,
)
from processor.config import Settings
from processor.domain.money import from_minor

DECLINING_METHODS = {"pm_card_chargeDeclined": "card_declined"}
AUTHENTICATION_METHODS = frozenset({"pm_card_authenticationRequired"})
_EXPIRING = "exp_"


def _fraction(*parts: object) -> float:
    digest = hashlib.sha256("|".join(map(str, parts)).encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2**64


def _digest(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()[:24]


def simulated_reference(authorize_key: str, expiring: bool = False) -> str:
    """The PaymentIntent-like id the simulator gives the authorisation made under this key."""
    return "pi_sim_" + (_EXPIRING if expiring else "") + _digest(authorize_key)


class SimulatedPaymentProvider(PaymentProvider):
    """Declines also for the configured decline amount and a stable `decline_rate` share of
    keys; transient errors for a stable `transient_error_rate` share of (key, attempt) pairs.
    `calls` counts provider calls and `states` keeps what this process saw (for `retrieve`)."""

    identifier = "simulator"

    def __init__(self, settings: Settings) -> None:
        self._settings = settings
        self._lock = threading.Lock()
        self.calls = 0
        self.states: dict[str, PaymentResult] = {}

    def _call(self) -> None:
        with self._lock:
            self.calls += 1
        if self._settings.payment_latency_ms:
            time.sleep(self._settings.payment_latency_ms / 1000)

    def _remember(self, result: PaymentResult) -> PaymentResult:
        if result.reference:
            with self._lock:
                self.states[result.reference] = result
        return result

    def authorize(self, request: Authorization) -> PaymentResult:
        self._call()
        s, email, key = self._settings, request.customer_email, request.idempotency_key
        if "+unavailable" in email or ("+flaky" in email and request.attempt < 2):
            raise TransientPaymentError("payment provider unavailable (simulated)")
        if _fraction("transient", key, request.attempt) < s.payment_transient_error_rate:
            raise TransientPaymentError("payment provider timed out (simulated)")
        reference = simulated_reference(key, expiring="+expired" in email)
        method = request.payment_method or ""
        declined = self._decline_code(request)
        if declined:
            return PaymentResult(PaymentState.DECLINED, reference, decline_code=declined)
        if method in AUTHENTICATION_METHODS:
            return PaymentResult(
                PaymentState.REQUIRES_ACTION,
                reference,
                message="the card requires customer authentication (3-D Secure)",
            )
        return self._remember(
            PaymentResult(PaymentState.AUTHORIZED, reference, request.amount_minor)
        )

    def _decline_code(self, request: Authorization) -> str | None:
        s = self._settings
        if request.payment_method in DECLINING_METHODS:
            return DECLINING_METHODS[request.payment_method]
        if s.payment_decline_email_tag and s.payment_decline_email_tag in request.customer_email:
            return "card_declined"
        amount = from_minor(request.amount_minor, request.currency)
        if s.payment_decline_amount is not None and amount == s.payment_decline_amount:
            return "amount_not_allowed"
        if _fraction("decline", request.idempotency_key) < s.payment_decline_rate:
            return "insufficient_funds"
        return None

    def capture(self, idempotency_key: str, reference: str, amount_minor: int) -> PaymentResult:
        self._call()
        if reference.startswith("pi_sim_" + _EXPIRING):
            return self._remember(
                PaymentResult(
                    PaymentState.FAILED, reference, message="the authorisation has expired"
                )
            )
        return self._remember(
            PaymentResult(PaymentState.CAPTURED, reference, amount_minor, amount_minor)
        )

    def cancel(self, idempotency_key: str, reference: str) -> PaymentResult:
        self._call()
        return self._remember(PaymentResult(PaymentState.CANCELED, reference))

    def refund(
        self, idempotency_key: str, reference: str, amount_minor: int, reason: str | None
    ) -> RefundResult:
        self._call()
        return RefundResult(True, "re_sim_" + _digest(idempotency_key))

    def retrieve(self, reference: str) -> PaymentResult:
        with self._lock:
            known = self.states.get(reference)
        return known or PaymentResult(
            PaymentState.FAILED, reference, message="unknown to this simulator process"
        )

    def webhook_action(self, body: bytes, headers: Mapping[str, str]) -> WebhookAction:
        raise InvalidWebhook("the simulator sends no webhooks")
