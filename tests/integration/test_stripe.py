"""The Stripe provider against localstripe (a real HTTP server), behind the fault-injecting
proxy of tests/stripe_proxy.py for what localstripe does not model (idempotent replay,
declines, 429, 5xx, an answer lost after the request took effect)."""

from __future__ import annotations

import json
import urllib.parse
import urllib.request
from collections.abc import Iterator
from decimal import Decimal
from typing import Any
from uuid import UUID

import pytest

from processor import bootstrap
from processor.adapters.payments.stripe_rest import StripeProvider
from processor.devstack import localstripe
from processor.domain.errors import ValidationFailed
from processor.orders import service as order_service
from processor.payments import service as payment_service
from processor.processing import service as processing
from tests.helpers import advance_to, history_of, order_request
from tests.stripe_proxy import ProxyState, start_proxy

pytestmark = pytest.mark.usefixtures("invariants_hold")
KEY = "sk_test_orderflow"


@pytest.fixture
def stripe(system: dict[str, Any], emulator: localstripe.LocalStripe) -> Iterator[ProxyState]:
    server, state = start_proxy(emulator.api_base)
    base = f"http://127.0.0.1:{server.server_address[1]}"
    bootstrap.set_payment_provider(StripeProvider(base, lambda: KEY, timeout_seconds=5))
    yield state
    bootstrap.set_payment_provider(None)
    server.shutdown()
    server.server_close()


def _stripe_get(state: ProxyState, path: str) -> dict[str, Any]:
    """Read localstripe directly (not through the proxy): what Stripe really holds."""
    request = urllib.request.Request(state.upstream + path)
    request.add_header("Authorization", f"Bearer {KEY}")
    with urllib.request.urlopen(request, timeout=5) as response:
        body: dict[str, Any] = json.loads(response.read())
        return body


def _order(payment_method: str = "pm_card_visa", **overrides: Any) -> UUID:
    body, _ = order_service.create_order(order_request(payment_method=payment_method, **overrides))
    return UUID(body["order_id"])


def _intent(state: ProxyState, order_id: UUID) -> dict[str, Any]:
    payment = order_service.get_order(order_id)["payment"]
    return _stripe_get(state, f"/v1/payment_intents/{payment['provider_reference']}")


def test_an_order_completes_with_one_captured_payment_intent_of_the_exact_amount(stripe):
    order_id = _order()

    assert processing.process_order(order_id) == "COMPLETED"

    intent = _intent(stripe, order_id)
    assert (intent["status"], intent["amount"], intent["currency"]) == ("succeeded", 12597, "usd")
    assert intent["capture_method"] == "manual"
    assert intent["metadata"] == {"order_id": str(order_id)}
    assert stripe.created_intents() == 1
    payment = order_service.get_order(order_id)["payment"]
    assert payment["amount_captured"] == Decimal("125.97")


def test_a_zero_decimal_currency_goes_to_stripe_in_whole_units(stripe):
    items = [{"product_name": "Tea", "quantity": 3, "unit_price": Decimal(1250)}]
    order_id = _order(items=items, currency="jpy")
    assert processing.process_order(order_id) == "COMPLETED"
    intent = _intent(stripe, order_id)
    assert (intent["amount"], intent["currency"]) == (3750, "jpy")


def test_stripe_requires_a_payment_method_on_the_order(stripe):
    with pytest.raises(ValidationFailed) as error:
        order_service.create_order(order_request())
    assert error.value.details == [{"field": "payment_method", "message": "required"}]


def test_cancelling_before_capture_voids_the_payment_intent(stripe):
    order_id = _order()
    advance_to(order_id, "PAYMENT_CONFIRMED")

    cancelled = order_service.cancel_order(order_id)

    assert cancelled["status"] == "CANCELLED"
    assert _intent(stripe, order_id)["status"] == "canceled"
    assert processing.process_order(order_id) == "CANCELLED"  # the redelivery captures nothing
    assert not [p for m, p in stripe.forwarded if p.endswith("/capture")]


def test_partial_then_full_refunds_reach_stripe_and_the_order_becomes_refunded(stripe):
    order_id = _order()
    processing.process_order(order_id)

    first, _ = payment_service.create_refund(order_id, payment_service.RefundRequest(Decimal("20")))
    rest, _ = payment_service.create_refund(order_id, payment_service.RefundRequest(None, "lost"))

    refunds = [_stripe_get(stripe, f"/v1/refunds/{r['provider_reference']}") for r in (first, rest)]
    assert [r["amount"] for r in refunds] == [2000, 10597]
    assert order_service.get_order(order_id)["status"] == "REFUNDED"


def test_a_declined_card_fails_the_payment_with_the_decline_code(stripe):
    order_id = _order("pm_card_chargeDeclined")
    assert processing.process_order(order_id) == "PAYMENT_FAILED"
    history = order_service.get_order(order_id)["status_history"]
    assert history[0]["message"] == "Payment declined: generic_decline"


def test_a_card_that_needs_3d_secure_fails_with_a_message_naming_authentication(stripe):
    form = {
        "type": "card",
        "card[number]": "4000002760003184",
        "card[exp_month]": "12",
        "card[exp_year]": "2030",
        "card[cvc]": "123",
    }
    request = urllib.request.Request(
        stripe.upstream + "/v1/payment_methods", data=urllib.parse.urlencode(form).encode()
    )
    request.add_header("Authorization", f"Bearer {KEY}")
    with urllib.request.urlopen(request, timeout=5) as response:
        method = json.loads(response.read())["id"]
    order_id = _order(method)

    assert processing.process_order(order_id) == "PAYMENT_FAILED"

    message = order_service.get_order(order_id)["status_history"][0]["message"]
    assert "authentication" in message
    assert _intent(stripe, order_id)["status"] == "requires_action"


def test_rate_limits_and_server_errors_are_retried_under_one_key_making_one_intent(stripe):
    stripe.inject("/v1/payment_intents", "429", "500")
    order_id = _order()

    assert processing.process_order(order_id) == "COMPLETED"

    assert stripe.created_intents() == 1
    assert _intent(stripe, order_id)["status"] == "succeeded"


@pytest.mark.parametrize("operation", ["/v1/payment_intents", "/capture"])
def test_an_answer_lost_after_stripe_acted_is_replayed_by_its_idempotency_key(
    system, stripe, operation
):
    stripe.inject(operation, "drop")
    order_id = _order()

    assert processing.process_order(order_id) == "COMPLETED"

    assert stripe.created_intents() == 1
    assert sum(1 for _, p in stripe.forwarded if p.endswith("/capture")) == 1
    assert any(operation in p for p in stripe.replayed)
    assert history_of(system["db"], order_id)[-1] == "COMPLETED"
