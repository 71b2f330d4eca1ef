"""Stripe over its REST API with the standard library (no SDK).

Why not the official `stripe` package: importing it costs about 1.1 s here against about 40 ms
for `urllib.request` (median of 7 cold starts each on a loaded 2-core machine; NOTES.md
measured 300 ms on a quiet one) and it is 31 MB unpacked; the five calls this provider
makes are plain form-encoded POSTs. This module is imported only by the processor path that
calls a provider: bootstrap builds it on first use, and the HTTP client is imported on the
first call, so the API function's cold start pays for neither.

Every mutating call sends the caller's `Idempotency-Key`, so Stripe answers a repeated call
(after a timeout, a crash, a concurrent delivery) with the first answer. Transient failures
(connection errors, timeouts, 429, 5xx, 409 `idempotency_key_in_use`) raise
TransientPaymentError: the caller keeps its committed intent and repeats the call.
"""

from __future__ import annotations

import json
import threading
import time
import urllib.parse
from collections.abc import Callable, Mapping
from typing import Any

from processor.adapters.payments.base import (
    Authorization,
    InvalidWebhook,
    PaymentProvider,
    PaymentResult,
    PaymentState,
    RefundResult,
    TransientPaymentError,
    WebhookAction,
    WebhookActionKind,
)

# PaymentIntent status -> neutral state.
_STATES = {
    "requires_capture": PaymentState.AUTHORIZED,
    "succeeded": PaymentState.CAPTURED,
    "canceled": PaymentState.CANCELED,
    "requires_action": PaymentState.REQUIRES_ACTION,
    "requires_payment_method": PaymentState.DECLINED,
}
_WEBHOOK_ACTIONS = {
    "payment_intent.amount_capturable_updated": WebhookActionKind.AUTHORIZED,
    "payment_intent.succeeded": WebhookActionKind.CAPTURED,
    "payment_intent.payment_failed": WebhookActionKind.FAILED,
    "payment_intent.canceled": WebhookActionKind.CANCELED,
    "charge.refunded": WebhookActionKind.REFUNDED,
}
WEBHOOK_TOLERANCE_SECONDS = 300


class StripeError(Exception):
    """A definite answer from Stripe that is not a success (a 4xx other than 409/429)."""

    def __init__(self, status: int, error: dict[str, Any]) -> None:
        super().__init__(f"stripe {status}: {error.get('code') or error.get('message')}")
        self.status = status
        self.error = error


def form_encode(params: Mapping[str, Any], prefix: str = "") -> list[tuple[str, str]]:
    """Stripe's form encoding: nested dicts as `a[b]=`, lists as `a[0]=`."""
    pairs: list[tuple[str, str]] = []
    for key, value in params.items():
        name = f"{prefix}[{key}]" if prefix else str(key)
        if isinstance(value, Mapping):
            pairs += form_encode(value, name)
        elif isinstance(value, list):
            pairs += form_encode({str(i): v for i, v in enumerate(value)}, name)
        elif isinstance(value, bool):
            pairs.append((name, "true" if value else "false"))
        elif value is not None:
            pairs.append((name, str(value)))
    return pairs


class StripeProvider(PaymentProvider):
    """PaymentIntents with manual capture, confirmed server-side with the order's method."""

    identifier = "stripe"
    requires_payment_method = True

    def __init__(
        self,
        api_base: str,
        secret_key: Callable[[], str],
        timeout_seconds: float = 10.0,
        webhook_secret: Callable[[], str | None] = lambda: None,
    ) -> None:
        self._api_base = api_base.rstrip("/")
        self._secret_key = secret_key
        self._timeout = timeout_seconds
        self._webhook_secret = webhook_secret

    def _call(
        self,
        method: str,
        path: str,
        params: Mapping[str, Any] | None = None,
        idempotency_key: str | None = None,
    ) -> dict[str, Any]:
        # Imported on the first call: building the provider (every request's dependencies)
        # then costs the API function nothing at its cold start.
        import urllib.error
        import urllib.request

        data = urllib.parse.urlencode(form_encode(params or {})).encode() if params else None
        request = urllib.request.Request(  # noqa: S310 (an https/http base from settings)
            self._api_base + path, data=data, method=method
        )
        request.add_header("Authorization", f"Bearer {self._secret_key()}")
        if data is not None:
            request.add_header("Content-Type", "application/x-www-form-urlencoded")
        if idempotency_key:
            request.add_header("Idempotency-Key", idempotency_key)
        try:
            with urllib.request.urlopen(request, timeout=self._timeout) as response:  # noqa: S310
                body: dict[str, Any] = json.loads(response.read())
                return body
        except urllib.error.HTTPError as error:
            status = error.code
            try:
                payload = json.loads(error.read() or b"{}")
            except ValueError:
                payload = {}
            detail = payload.get("error", {}) if isinstance(payload, dict) else {}
            if status in (409, 429) or status >= 500:
                raise TransientPaymentError(f"stripe answered {status}") from None
            raise StripeError(status, detail if isinstance(detail, dict) else {}) from None
        except (urllib.error.URLError, TimeoutError, ConnectionError, OSError) as error:
            raise TransientPaymentError(f"stripe unreachable: {type(error).__name__}") from None

    @staticmethod
    def _result(intent: dict[str, Any]) -> PaymentResult:
        state = _STATES.get(intent.get("status", ""), PaymentState.FAILED)
        error = intent.get("last_payment_error") or {}
        return PaymentResult(
            state,
            intent.get("id"),
            amount_authorized=int(intent.get("amount_capturable") or intent.get("amount") or 0)
            if state in (PaymentState.AUTHORIZED, PaymentState.CAPTURED)
            else 0,
            amount_captured=int(intent.get("amount_received") or intent.get("amount") or 0)
            if state == PaymentState.CAPTURED
            else 0,
            decline_code=error.get("decline_code") or error.get("code")
            if state == PaymentState.DECLINED
            else None,
            message=error.get("message"),
        )

    def authorize(self, request: Authorization) -> PaymentResult:
        params = {
            "amount": request.amount_minor,
            "currency": request.currency,
            "payment_method": request.payment_method,
            "payment_method_types": ["card"],
            "capture_method": "manual",
            "confirm": True,
            "metadata": {"order_id": request.order_id},
        }
        try:
            intent = self._call("POST", "/v1/payment_intents", params, request.idempotency_key)
        except StripeError as error:
            if error.status == 402:  # card_error: declined; the intent is in the error
                detail = error.error
                intent_id = (detail.get("payment_intent") or {}).get("id")
                code = detail.get("decline_code") or detail.get("code") or "card_declined"
                return PaymentResult(PaymentState.DECLINED, intent_id, decline_code=code)
            return PaymentResult(
                PaymentState.DECLINED,
                decline_code=error.error.get("code") or f"invalid_request_{error.status}",
                message=error.error.get("message"),
            )
        return self._result(intent)

    def capture(self, idempotency_key: str, reference: str, amount_minor: int) -> PaymentResult:
        try:
            intent = self._call(
                "POST",
                f"/v1/payment_intents/{reference}/capture",
                {"amount_to_capture": amount_minor},
                idempotency_key,
            )
        except StripeError as error:
            intent = {"id": reference, "status": "", "last_payment_error": error.error}
            current = self.retrieve(reference)
            if current.state == PaymentState.CAPTURED:  # captured by an earlier try
                return current
        result = self._result(intent)
        if result.state != PaymentState.CAPTURED:  # canceled or expired: refused for good
            state = str(intent.get("status") or "not capturable")
            return PaymentResult(PaymentState.FAILED, reference, message=f"payment is {state}")
        return result

    def cancel(self, idempotency_key: str, reference: str) -> PaymentResult:
        try:
            intent = self._call(
                "POST", f"/v1/payment_intents/{reference}/cancel", {}, idempotency_key
            )
        except StripeError:
            current = self.retrieve(reference)
            if current.state == PaymentState.CANCELED:
                return current
            return PaymentResult(PaymentState.FAILED, reference, message="not cancelable")
        return self._result(intent)

    def refund(
        self, idempotency_key: str, reference: str, amount_minor: int, reason: str | None
    ) -> RefundResult:
        params = {
            "payment_intent": reference,
            "amount": amount_minor,
            "metadata": {"reason": reason[:500]} if reason else None,
        }
        try:
            refund = self._call("POST", "/v1/refunds", params, idempotency_key)
        except StripeError as error:
            return RefundResult(False, message=error.error.get("message") or "refused")
        succeeded = refund.get("status") in ("succeeded", "pending")
        return RefundResult(succeeded, refund.get("id"), refund.get("failure_reason"))

    def retrieve(self, reference: str) -> PaymentResult:
        try:
            return self._result(self._call("GET", f"/v1/payment_intents/{reference}"))
        except StripeError as error:
            return PaymentResult(PaymentState.FAILED, reference, message=str(error))

    def webhook_action(self, body: bytes, headers: Mapping[str, str]) -> WebhookAction:
        """Verify `Stripe-Signature` (HMAC-SHA256 of `t.body`, within 5 minutes) and map the
        event to a neutral action."""
        from processor.adapters import stripe_signature

        secret = self._webhook_secret()
        if not secret:
            raise InvalidWebhook("no webhook signing secret")
        header = {k.lower(): v for k, v in headers.items()}.get("stripe-signature")
        try:
            stripe_signature.verify(body, header, [secret], time.time(), WEBHOOK_TOLERANCE_SECONDS)
        except stripe_signature.SignatureError as error:
            raise InvalidWebhook(str(error)) from None
        try:
            event = json.loads(body)
            obj = event["data"]["object"]
        except (ValueError, KeyError, TypeError):
            raise InvalidWebhook("not a Stripe event") from None
        kind = _WEBHOOK_ACTIONS.get(event.get("type", ""), WebhookActionKind.NOT_SUPPORTED)
        metadata = obj.get("metadata") or {}
        reference = obj.get("payment_intent") if obj.get("object") == "charge" else obj.get("id")
        amount = obj.get("amount_refunded") if kind == WebhookActionKind.REFUNDED else obj.get(
            "amount_received" if kind == WebhookActionKind.CAPTURED else "amount"
        )
        return WebhookAction(kind, metadata.get("order_id"), reference, int(amount or 0))


_key_lock = threading.Lock()
_cached_key: dict[str, tuple[str, float]] = {}
KEY_MAX_AGE_SECONDS = 300.0


def secret_key_reader(arn: str | None, api_base: str) -> Callable[[], str]:
    """The secret key, read from Secrets Manager (`arn`) and cached for five minutes, so a
    rotated key is picked up without a restart. Without an ARN only a local emulator
    (loopback `api_base`, e.g. localstripe, which takes any key) gets a dummy test key: the
    real key is never in the environment."""
    host = urllib.parse.urlsplit(api_base).hostname or ""
    if arn is None:
        if host not in ("127.0.0.1", "localhost", "::1"):
            raise ValueError("STRIPE_SECRET_KEY_ARN is required for a non-local Stripe API")
        return lambda: "sk_test_local_emulator"

    def read() -> str:
        with _key_lock:
            cached = _cached_key.get(arn)
            if cached and time.monotonic() - cached[1] < KEY_MAX_AGE_SECONDS:
                return cached[0]
        from processor.adapters.aws import client

        value: str = client("secretsmanager").get_secret_value(SecretId=arn)["SecretString"]
        with _key_lock:
            _cached_key[arn] = (value.strip(), time.monotonic())
        return value.strip()

    return read
