"""What signed Stripe events do to our records: each event id once, duplicates and late events
harmless, nothing moved backwards; a capture or a dashboard refund recorded; a dispute or a
forged event never changes anything. Events are signed here as Stripe signs them; the last
test receives real deliveries from localstripe."""

from __future__ import annotations

import hashlib
import hmac
import json
import time
import urllib.parse
import urllib.request
from collections.abc import Iterator
from typing import Any
from uuid import UUID

import pytest

from processor import bootstrap
from processor.adapters.payments.stripe_rest import StripeProvider
from processor.devstack import localstripe
from processor.devstack.local import free_port, start_api
from processor.orders import service as order_service
from processor.reconciliation.reconciler import Options, reconcile
from tests.helpers import advance_to, count, order_request, wait_until

SECRET = "whsec_events_test"
PATH = "/webhooks/stripe"


def signed_post(api: Any, event: dict[str, Any], secret: str = SECRET) -> tuple[int, Any]:
    body = json.dumps(event).encode()
    stamp = int(time.time())
    digest = hmac.new(secret.encode(), f"{stamp}.".encode() + body, hashlib.sha256).hexdigest()
    status, answer, _ = api.post(PATH, raw=body,
                                 headers={"Stripe-Signature": f"t={stamp},v1={digest}"})
    return status, answer


def event(event_id: str, event_type: str, obj: dict[str, Any]) -> dict[str, Any]:
    return {"id": event_id, "object": "event", "type": event_type, "created": int(time.time()),
            "data": {"object": obj}}


def intent(order_id: UUID, reference: str, status: str, amount: int) -> dict[str, Any]:
    return {"id": reference, "object": "payment_intent", "status": status, "amount": amount,
            "amount_received": amount if status == "succeeded" else 0, "currency": "usd",
            "metadata": {"order_id": str(order_id)}}


def charge(reference: str, refunds: list[dict[str, Any]]) -> dict[str, Any]:
    return {"id": "ch_1", "object": "charge", "payment_intent": reference, "currency": "usd",
            "amount_refunded": sum(r["amount"] for r in refunds),
            "refunds": {"object": "list", "data": refunds}}


@pytest.fixture
def webhook(api: Any, configure: Any) -> Any:
    configure(STRIPE_WEBHOOK_SECRET=SECRET)
    return api


def order_at(status: str) -> tuple[UUID, str]:
    body, _ = order_service.create_order(order_request())
    order_id = UUID(body["order_id"])
    advance_to(order_id, status)
    return order_id, order_service.get_order(order_id)["payment"]["provider_reference"]


def test_a_capture_event_ships_a_confirmed_order_once_and_a_redelivery_changes_nothing(
        webhook: Any, system: dict[str, Any]) -> None:
    order_id, reference = order_at("PAYMENT_CONFIRMED")
    captured = event("evt_cap", "payment_intent.succeeded",
                     intent(order_id, reference, "succeeded", 12597))

    assert signed_post(webhook, captured) == (200, {
        "received": True, "duplicate": False, "event_id": "evt_cap", "outcome": "applied"})
    assert signed_post(webhook, captured)[1]["duplicate"] is True
    order = order_service.get_order(order_id)
    assert order["status"] == "FULFILLED"
    assert [h["status"] for h in order["status_history"]].count("FULFILLED") == 1
    assert count(system["db"], "SELECT count(*) FROM provider_events") == 1


def test_late_events_about_an_earlier_state_are_stale_and_move_nothing_backwards(
        webhook: Any) -> None:
    order_id, reference = order_at("COMPLETED")
    for event_id, kind, status in (
        ("evt_auth", "payment_intent.amount_capturable_updated", "requires_capture"),
        ("evt_fail", "payment_intent.payment_failed", "requires_payment_method"),
        ("evt_void", "payment_intent.canceled", "canceled"),
    ):
        _, answer = signed_post(webhook, event(event_id, kind,
                                               intent(order_id, reference, status, 12597)))
        assert answer["outcome"] == "stale", kind
    assert order_service.get_order(order_id)["status"] == "COMPLETED"


def test_a_dashboard_refund_appears_in_the_orders_refunds_once(webhook: Any) -> None:
    order_id, reference = order_at("COMPLETED")
    refund = {"id": "re_dash", "amount": 597, "currency": "usd", "status": "succeeded"}
    _, first = signed_post(webhook, event("evt_r1", "charge.refunded",
                                          charge(reference, [refund])))
    _, again = signed_post(webhook, event("evt_r2", "charge.refunded",
                                          charge(reference, [refund])))
    assert (first["outcome"], again["outcome"]) == ("applied", "unchanged")
    order = order_service.get_order(order_id)
    assert [(r["provider_reference"], str(r["amount"])) for r in order["refunds"]] == [
        ("re_dash", "5.97")]
    assert order["payment"]["amount_refunded"] == order["payment"]["amount_captured"] - 120


def test_a_dispute_is_a_disagreement_for_an_operator_and_the_reconciler_reports_it(
        webhook: Any) -> None:
    order_id, reference = order_at("COMPLETED")
    dispute = {"id": "dp_1", "object": "dispute", "payment_intent": reference,
               "amount": 12597, "currency": "usd", "reason": "fraudulent"}
    _, answer = signed_post(webhook, event("evt_dp", "charge.dispute.created", dispute))
    assert answer["outcome"] == "disagreement"
    assert order_service.get_order(order_id)["status"] == "COMPLETED"
    report = reconcile(Options(include_queues=False))
    assert [(f.kind, f.order_id) for f in report.findings] == [
        ("disputed_payment", str(order_id))]


def test_a_forged_refund_event_is_refused_and_records_nothing(
        webhook: Any, system: dict[str, Any]) -> None:
    order_id, reference = order_at("COMPLETED")
    forged = event("evt_forged", "charge.refunded", charge(reference, [
        {"id": "re_forged", "amount": 12597, "currency": "usd", "status": "succeeded"}]))
    status, answer = signed_post(webhook, forged, secret="whsec_guessed")
    assert (status, answer["error"]["code"]) == (400, "INVALID_SIGNATURE")
    assert order_service.get_order(order_id)["refunds"] == []
    assert count(system["db"], "SELECT count(*) FROM provider_events") == 0


def test_an_event_for_an_order_we_do_not_have_is_stored_as_unknown_order(webhook: Any) -> None:
    stranger = UUID(int=7)
    _, answer = signed_post(webhook, event("evt_x", "payment_intent.succeeded",
                                           intent(stranger, "pi_x", "succeeded", 100)))
    assert answer["outcome"] == "unknown_order"


@pytest.fixture
def localstripe_webhook(system: dict[str, Any], configure: Any
                        ) -> Iterator[tuple[str, str]]:
    """localstripe delivering signed events to the real HTTP server of the app."""
    configure(STRIPE_WEBHOOK_SECRET=SECRET)
    emulator = localstripe.spawn(free_port()).wait_ready()
    port = free_port()
    server = start_api("127.0.0.1", port)
    import threading

    threading.Thread(target=server.serve_forever, daemon=True).start()
    form = urllib.parse.urlencode({"url": f"http://127.0.0.1:{port}{PATH}", "secret": SECRET})
    urllib.request.urlopen(urllib.request.Request(
        f"{emulator.api_base}/_config/webhooks/orderflow", data=form.encode()), timeout=5).close()
    bootstrap.set_payment_provider(StripeProvider(emulator.api_base, lambda: "sk_test_x"))
    yield emulator.api_base, f"http://127.0.0.1:{port}"
    bootstrap.set_payment_provider(None)
    server.shutdown()
    emulator.stop()


def test_localstripe_signs_its_deliveries_and_a_capture_behind_the_apps_back_ships_the_order(
        localstripe_webhook: tuple[str, str], system: dict[str, Any]) -> None:
    api_base, _ = localstripe_webhook
    body, _ = order_service.create_order(order_request(payment_method="pm_card_visa"))
    order_id = UUID(body["order_id"])
    advance_to(order_id, "PAYMENT_CONFIRMED")
    reference = order_service.get_order(order_id)["payment"]["provider_reference"]
    request = urllib.request.Request(f"{api_base}/v1/payment_intents/{reference}/capture",
                                     data=b"", method="POST")
    request.add_header("Authorization", "Bearer sk_test_x")
    urllib.request.urlopen(request, timeout=5).close()

    wait_until(lambda: count(system["db"], "SELECT count(*) FROM provider_events"
                             " WHERE outcome = 'applied'") == 1, 15, "the signed delivery")
    assert order_service.get_order(order_id)["status"] == "FULFILLED"


def test_localstripe_reports_the_apps_own_capture_and_the_webhook_finds_it_unchanged(
        localstripe_webhook: tuple[str, str], system: dict[str, Any]) -> None:
    body, _ = order_service.create_order(order_request(payment_method="pm_card_visa"))
    advance_to(UUID(body["order_id"]), "COMPLETED")
    wait_until(lambda: count(system["db"], "SELECT count(*) FROM provider_events") == 1, 15,
               "the signed delivery")
    assert count(system["db"], "SELECT count(*) FROM provider_events"
                 " WHERE outcome = 'unchanged'") == 1
