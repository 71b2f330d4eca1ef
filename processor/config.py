"""Runtime settings, read once from the environment (Lambda, Fargate and local alike)."""

from __future__ import annotations

import os
from dataclasses import dataclass
from decimal import Decimal
from functools import lru_cache

from processor.domain.model import Status
from processor.domain.money import normalise_currency


def _float(name: str, default: float) -> float:
    return float(os.environ.get(name, default))


def _int(name: str, default: int) -> int:
    return int(os.environ.get(name, default))


def _statuses(name: str) -> frozenset[str]:
    """A comma-separated status list; unset means every status, empty or `none` none."""
    text = os.environ.get(name)
    if text is None:
        return frozenset(s.value for s in Status)
    chosen = {part.strip().upper() for part in text.split(",")} - {"", "NONE"}
    unknown = chosen - {s.value for s in Status}
    if unknown:
        raise ValueError(f"{name}: unknown status(es) {', '.join(sorted(unknown))}")
    return frozenset(chosen)


def _choice(name: str, default: str, allowed: tuple[str, ...]) -> str:
    value = os.environ.get(name, default).strip().lower()
    if value not in allowed:
        raise ValueError(f"{name}: {value!r} is not one of {', '.join(allowed)}")
    return value


@dataclass(frozen=True)
class Settings:
    queue_url: str | None
    dlq_url: str | None
    topic_arn: str | None
    sender_email: str
    api_key: str | None
    api_key_required: bool
    max_body_bytes: int
    payment_decline_rate: float
    payment_decline_email_tag: str
    payment_decline_amount: Decimal | None
    payment_transient_error_rate: float
    payment_latency_ms: int
    payment_retry_attempts: int
    payment_retry_base_seconds: float
    fulfilment_delay_seconds: float
    completion_delay_seconds: float
    outbox_grace_seconds: float
    order_message_confirm_seconds: float
    retry_visibility_base_seconds: int
    customer_email_statuses: frozenset[str]
    outbox_lease_seconds: float
    outbox_retry_base_seconds: float
    outbox_retry_max_seconds: float
    outbox_max_attempts: int
    stripe_webhook_secret: str | None
    stripe_webhook_secret_arn: str | None
    webhook_max_body_bytes: int
    webhook_tolerance_seconds: int
    payment_provider: str
    default_currency: str
    stripe_api_base: str
    stripe_secret_key_arn: str | None
    stripe_timeout_seconds: float

    @classmethod
    def from_env(cls) -> Settings:
        decline_amount = os.environ.get("PAYMENT_DECLINE_AMOUNT")
        return cls(
            queue_url=os.environ.get("ORDER_QUEUE_URL"),
            dlq_url=os.environ.get("ORDER_DLQ_URL"),
            topic_arn=os.environ.get("NOTIFICATION_TOPIC_ARN"),
            sender_email=os.environ.get("SENDER_EMAIL", "orders@example.com"),
            api_key=os.environ.get("API_KEY") or None,
            # The app checks API_KEY itself; API Gateway checks the key before the Lambda runs
            # and only the stack knows whether it does (API_KEY_REQUIRED). Either way, the
            # published document must then declare the key.
            api_key_required=bool(os.environ.get("API_KEY"))
            or os.environ.get("API_KEY_REQUIRED", "").lower() in ("1", "true"),
            max_body_bytes=_int("MAX_BODY_BYTES", 65_536),
            payment_decline_rate=_float("PAYMENT_DECLINE_RATE", 0.0),
            payment_decline_email_tag=os.environ.get("PAYMENT_DECLINE_EMAIL_TAG", "+decline"),
            payment_decline_amount=Decimal(decline_amount) if decline_amount else None,
            payment_transient_error_rate=_float("PAYMENT_TRANSIENT_ERROR_RATE", 0.0),
            payment_latency_ms=_int("PAYMENT_LATENCY_MS", 0),
            payment_retry_attempts=_int("PAYMENT_RETRY_ATTEMPTS", 3),
            payment_retry_base_seconds=_float("PAYMENT_RETRY_BASE_SECONDS", 0.05),
            fulfilment_delay_seconds=_float("FULFILMENT_DELAY_SECONDS", 0.0),
            completion_delay_seconds=_float("COMPLETION_DELAY_SECONDS", 0.0),
            outbox_grace_seconds=_float("OUTBOX_GRACE_SECONDS", 10.0),
            order_message_confirm_seconds=_float("ORDER_MESSAGE_CONFIRM_SECONDS", 120.0),
            retry_visibility_base_seconds=_int("RETRY_VISIBILITY_BASE_SECONDS", 2),
            # SES bills per email: which saved statuses email the customer (SNS gets them all).
            customer_email_statuses=_statuses("CUSTOMER_EMAIL_STATUSES"),
            # Notifications: how long a relay holds a record it is sending (longer than an SES
            # call with its retries; a relay that dies releases it then), the backoff after a
            # failed attempt (doubling from the base up to the maximum), and the attempts after
            # which a refused email is given up.
            outbox_lease_seconds=_float("OUTBOX_LEASE_SECONDS", 60.0),
            outbox_retry_base_seconds=_float("OUTBOX_RETRY_BASE_SECONDS", 5.0),
            outbox_retry_max_seconds=_float("OUTBOX_RETRY_MAX_SECONDS", 300.0),
            outbox_max_attempts=_int("OUTBOX_MAX_ATTEMPTS", 10),
            # The webhook signing secret: the value locally, its Secrets Manager ARN in the
            # stack. Several secrets, comma-separated, while an endpoint's secret is rolled.
            stripe_webhook_secret=os.environ.get("STRIPE_WEBHOOK_SECRET") or None,
            stripe_webhook_secret_arn=os.environ.get("STRIPE_WEBHOOK_SECRET_ARN") or None,
            # Stripe's events are a few KB; a PaymentIntent with many charges stays far below.
            webhook_max_body_bytes=_int("WEBHOOK_MAX_BODY_BYTES", 262_144),
            webhook_tolerance_seconds=_int("WEBHOOK_TOLERANCE_SECONDS", 300),
            payment_provider=_choice("PAYMENT_PROVIDER", "simulator", ("simulator", "stripe")),
            default_currency=normalise_currency(os.environ.get("DEFAULT_CURRENCY", "usd")),
            stripe_api_base=os.environ.get("STRIPE_API_BASE", "https://api.stripe.com"),
            # The key itself is never in the environment: Secrets Manager holds it (in the
            # cloud, this ARN); locally, STRIPE_SECRET_KEY_ARN names a moto secret or is unset
            # and localstripe takes any sk_test_ key.
            stripe_secret_key_arn=os.environ.get("STRIPE_SECRET_KEY_ARN") or None,
            stripe_timeout_seconds=_float("STRIPE_TIMEOUT_SECONDS", 10.0),
        )


AUTH_MODES = ("api_key", "jwt")


def auth_mode() -> str:
    """`AUTH`: `api_key` (the default: the operator key opens every order) or `jwt` (customers
    with bearer tokens see their own orders; see chalicelib/auth.py)."""
    mode = os.environ.get("AUTH") or "api_key"
    if mode not in AUTH_MODES:
        raise ValueError(f"AUTH must be one of {', '.join(AUTH_MODES)}, not {mode!r}")
    return mode


@lru_cache(maxsize=1)
def settings() -> Settings:
    return Settings.from_env()
