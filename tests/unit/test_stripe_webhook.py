"""The Stripe adapter's webhook hook: a signed event becomes a neutral action (what the
reconciler acts on); a bad or stale signature is refused."""

import hashlib
import hmac
import json
import time

import pytest

from processor.adapters.payments.base import InvalidWebhook, WebhookActionKind
from processor.adapters.payments.stripe_rest import StripeProvider, form_encode

SECRET = "whsec_test"


def _provider() -> StripeProvider:
    return StripeProvider("http://127.0.0.1:9", lambda: "sk_test_x", webhook_secret=lambda: SECRET)


def _signed(event: dict, secret: str = SECRET, at: int | None = None) -> tuple[bytes, dict]:
    body = json.dumps(event).encode()
    stamp = str(at if at is not None else int(time.time()))
    signature = hmac.new(secret.encode(), f"{stamp}.".encode() + body, hashlib.sha256).hexdigest()
    return body, {"Stripe-Signature": f"t={stamp},v1={signature}"}


EVENT = {
    "type": "payment_intent.succeeded",
    "data": {
        "object": {
            "id": "pi_1",
            "object": "payment_intent",
            "amount_received": 12597,
            "metadata": {"order_id": "o-1"},
        }
    },
}


def test_a_signed_capture_event_becomes_a_neutral_captured_action():
    action = _provider().webhook_action(*_signed(EVENT))
    assert (action.kind, action.order_id, action.reference, action.amount_minor) == (
        WebhookActionKind.CAPTURED,
        "o-1",
        "pi_1",
        12597,
    )


def test_an_unknown_event_type_is_not_supported_rather_than_refused():
    action = _provider().webhook_action(*_signed({**EVENT, "type": "customer.created"}))
    assert action.kind == WebhookActionKind.NOT_SUPPORTED


@pytest.mark.parametrize("forged", [{"secret": "whsec_other"}, {"at": int(time.time()) - 3600}])
def test_a_wrong_or_stale_signature_is_refused(forged):
    with pytest.raises(InvalidWebhook):
        _provider().webhook_action(*_signed(EVENT, **forged))


def test_parameters_are_form_encoded_as_stripe_expects():
    assert form_encode(
        {
            "amount": 5,
            "metadata": {"order_id": "o"},
            "payment_method_types": ["card"],
            "confirm": True,
            "skip": None,
        }
    ) == [
        ("amount", "5"),
        ("metadata[order_id]", "o"),
        ("payment_method_types[0]", "card"),
        ("confirm", "true"),
    ]
