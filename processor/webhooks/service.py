"""`POST /webhooks/stripe`: accept a provider event once, after proving Stripe sent it.

Order of checks, each refusing before anything is stored: size (413), signing secret
configured (503), signature and freshness (400 `INVALID_SIGNATURE`), event shape (400). Then
the event id is claimed in the same transaction as whatever the event changes, so a
redelivery, or two deliveries racing, apply it once; a repeated id answers 200 with
`duplicate: true` and changes nothing (Stripe stops retrying on any 2xx).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any
from uuid import UUID

from db.provider_events import ProviderEvent
from processor import metrics
from processor.adapters import stripe_signature
from processor.bootstrap import Dependencies, dependencies
from processor.config import Settings
from processor.domain import errors
from processor.domain.reconciliation import EventOutcome
from processor.jsonutil import loads
from processor.observability import emit_metric
from processor.reconciliation.records import Recorded

log = logging.getLogger(__name__)
PROVIDER = "stripe"


def signing_secrets(config: Settings) -> list[str]:
    """The configured signing secret(s); the stack's ARN is read from Secrets Manager."""
    raw = config.stripe_webhook_secret
    if raw is None and config.stripe_webhook_secret_arn:
        from processor.adapters.secrets import secret_string

        raw = secret_string(config.stripe_webhook_secret_arn)
    return [part.strip() for part in (raw or "").split(",") if part.strip()]


def authenticate(body: bytes, signature: str | None, config: Settings) -> dict[str, Any]:
    """The event, once the body is within the limit, signed by Stripe, fresh and well formed."""
    if len(body) > config.webhook_max_body_bytes:
        raise errors.PayloadTooLarge(
            f"webhook body exceeds {config.webhook_max_body_bytes} bytes"
        )
    secrets = signing_secrets(config)
    if not secrets:
        raise errors.WebhookNotConfigured(
            "no webhook signing secret is configured (STRIPE_WEBHOOK_SECRET or its ARN)"
        )
    try:
        stripe_signature.verify(
            body, signature, secrets, time.time(), config.webhook_tolerance_seconds
        )
    except stripe_signature.SignatureError as error:
        emit_metric(metrics.WEBHOOK_REJECTED)
        raise errors.InvalidSignature(str(error)) from None
    try:
        event = loads(body)
    except ValueError:
        raise errors.InvalidJson("webhook body is not valid JSON") from None
    _check_shape(event)
    return dict(event)


def _check_shape(event: Any) -> None:
    problems = []
    if not isinstance(event, dict):
        raise errors.ValidationFailed("webhook body must be a Stripe event object")
    if not isinstance(event.get("id"), str) or not 1 <= len(event["id"]) <= 255:
        problems.append({"field": "id", "message": "an event id of 1-255 characters"})
    if not isinstance(event.get("type"), str) or not event["type"]:
        problems.append({"field": "type", "message": "an event type"})
    if not isinstance(event.get("created"), int) or isinstance(event.get("created"), bool):
        problems.append({"field": "created", "message": "a Unix timestamp"})
    data = event.get("data")
    if not isinstance(data, dict) or not isinstance(data.get("object"), dict):
        problems.append({"field": "data.object", "message": "an object"})
    if problems:
        raise errors.ValidationFailed("webhook body is not a Stripe event", problems)


def order_id_of(obj: dict[str, Any]) -> UUID | None:
    """The order named in the object's metadata (set when the PaymentIntent was created)."""
    metadata = obj.get("metadata")
    raw = metadata.get("order_id") if isinstance(metadata, dict) else None
    try:
        return UUID(str(raw)) if raw else None
    except ValueError:
        return None


def reference_of(event_type: str, obj: dict[str, Any]) -> str | None:
    """The PaymentIntent id the event is about (charges and disputes point to theirs)."""
    if event_type.startswith("payment_intent."):
        return str(obj.get("id")) if obj.get("id") else None
    intent = obj.get("payment_intent")
    return str(intent) if isinstance(intent, str) else None


Handler = Callable[[Dependencies, Any, ProviderEvent, dict[str, Any]], Recorded]


def receive(
    body: bytes,
    signature: str | None,
    deps: Dependencies | None = None,
    handlers: dict[str, Handler] | None = None,
) -> dict[str, Any]:
    """Authenticate, claim the event id, apply the event; returns the response body.
    `handlers` (event type -> handler) defaults to processor/webhooks/events.py's table."""
    if handlers is None:
        from processor.webhooks.events import HANDLERS

        handlers = HANDLERS
    deps = deps or dependencies()
    event = authenticate(body, signature, deps.settings)
    obj: dict[str, Any] = event["data"]["object"]
    stored = ProviderEvent(
        event_id=event["id"],
        provider=PROVIDER,
        event_type=event["type"],
        occurred_at=datetime.fromtimestamp(event["created"], UTC),
        order_id=order_id_of(obj),
        reference=reference_of(event["type"], obj),
    )
    handler = handlers.get(stored.event_type)
    with deps.uow() as uow:
        if not uow.provider_events.claim(stored):
            return {"received": True, "duplicate": True, "event_id": stored.event_id}
        result = handler(deps, uow, stored, obj) if handler else Recorded(EventOutcome.IGNORED)
        uow.provider_events.record_outcome(
            stored.event_id, result.outcome, result.detail, result.order_id
        )
        uow.commit()
    if result.notified and result.order_id is not None:
        deps.publisher.publish_notifications(result.order_id)
    emit_metric(metrics.WEBHOOK_EVENTS, outcome=result.outcome)
    if result.outcome == EventOutcome.DISAGREEMENT:
        log.warning(
            "provider disagrees: %s", result.detail,
            extra={"event_id": stored.event_id, "event_type": stored.event_type},
        )
    return {
        "received": True,
        "duplicate": False,
        "event_id": stored.event_id,
        "outcome": str(result.outcome),
    }
