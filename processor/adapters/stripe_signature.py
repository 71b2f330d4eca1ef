"""Stripe webhook signatures, verified as Stripe specifies, with the standard library only.

Stripe signs `<timestamp>.<raw body>` with HMAC-SHA256 under the endpoint's signing secret and
sends `Stripe-Signature: t=<timestamp>,v1=<hex>[,v1=<hex>...][,v0=...]`. Several `v1` entries
appear while a secret is being rolled; any one matching is enough. A timestamp older than the
tolerance is refused, so a captured request cannot be replayed later. The SDK does the same
(`stripe.WebhookSignature.verify_header`), but importing it costs ~300 ms of the API's cold
start for twenty lines of `hmac`.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Sequence

SCHEME = "v1"
DEFAULT_TOLERANCE_SECONDS = 300  # Stripe's own default


class SignatureError(Exception):
    """The request is not a genuine, fresh Stripe delivery; the message says which check failed
    (never the expected signature)."""


def expected_signature(payload: bytes, secret: str, timestamp: int) -> str:
    """The hex `v1` signature Stripe computes for this body at this timestamp."""
    signed = str(timestamp).encode() + b"." + payload
    return hmac.new(secret.encode(), signed, hashlib.sha256).hexdigest()


def parse_header(header: str) -> tuple[int, list[str]]:
    """(timestamp, v1 signatures) of a `Stripe-Signature` header; other schemes are ignored."""
    timestamp: int | None = None
    signatures: list[str] = []
    for item in header.split(","):
        key, sep, value = item.strip().partition("=")
        if not sep:
            continue
        if key == "t":
            try:
                timestamp = int(value)
            except ValueError:
                raise SignatureError("the Stripe-Signature timestamp is not a number") from None
        elif key == SCHEME and value:
            signatures.append(value)
    if timestamp is None or not signatures:
        raise SignatureError("the Stripe-Signature header has no timestamp or no v1 signature")
    return timestamp, signatures


def verify(
    payload: bytes,
    header: str | None,
    secrets: Sequence[str],
    now: float,
    tolerance_seconds: int = DEFAULT_TOLERANCE_SECONDS,
) -> int:
    """Return the signed timestamp when one `v1` signature matches one secret; else raise.

    Every candidate is compared in constant time (`hmac.compare_digest`), so the time taken
    says nothing about how much of a forged signature was right. `secrets` may hold the old
    and the new secret while an endpoint's secret is rolled.
    """
    if not header:
        raise SignatureError("the Stripe-Signature header is missing")
    timestamp, signatures = parse_header(header)
    matched = False
    for secret in secrets:
        expected = expected_signature(payload, secret, timestamp).encode()
        for given in signatures:
            matched |= hmac.compare_digest(expected, given.encode())
    if not matched:
        raise SignatureError("no Stripe-Signature v1 signature matches the payload")
    if timestamp < now - tolerance_seconds:
        raise SignatureError(
            f"the Stripe-Signature timestamp is more than {tolerance_seconds} s old"
        )
    return timestamp
