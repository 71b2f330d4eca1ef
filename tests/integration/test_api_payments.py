"""Payments over the API: currency and payment method on orders, the payment shown on the
order, refunds (partial, full -> REFUNDED, idempotent, over-refund refused), and the
simulator's Stripe test payment methods."""

from __future__ import annotations

import threading
from decimal import Decimal
from typing import Any
from uuid import UUID

import pytest

from processor.payments import service as payment_service
from tests.helpers import (
    advance_to,
    emailed_statuses,
    history_of,
    rows,
    status_of,
)
from tests.integration.conftest import ORDER

pytestmark = pytest.mark.usefixtures("invariants_hold")


def _order(api: Any, **fields: Any) -> dict[str, Any]:
    status, body, _ = api.post("/orders", {**ORDER, **fields})
    assert status == 201, body
    return body


def _refund(api: Any, order_id: str, body: Any, key: str | None = None) -> tuple[int, Any, Any]:
    headers = {"Idempotency-Key": key} if key else None
    return api.post(f"/orders/{order_id}/refunds", body, headers)


def test_an_order_takes_a_currency_in_any_case_and_returns_it_in_lower_case(api, system):
    created = _order(api, currency="EUR", payment_method="pm_card_visa")
    assert created["currency"] == "eur"
    assert rows(
        system["db"],
        "SELECT currency, payment_method FROM orders WHERE order_id = %s",
        created["order_id"],
    ) == [("eur", "pm_card_visa")]
    assert _order(api)["currency"] == "usd"  # DEFAULT_CURRENCY


@pytest.mark.parametrize(
    ("fields", "field"),
    [
        ({"currency": "xyz"}, "currency"),
        ({"currency": "jpy"}, "body"),  # 24.99 yen does not exist: refused, never rounded
        ({"payment_method": "pm card"}, "payment_method"),
    ],
)
def test_an_unknown_currency_a_fractional_yen_price_or_a_bad_method_is_400_and_stores_nothing(
    api, system, fields, field
):
    status, body, _ = api.post("/orders", {**ORDER, **fields})
    assert status == 400
    assert body["error"]["code"] == "VALIDATION_ERROR"
    assert any(field in d["field"] for d in body["error"]["details"]), body
    assert rows(system["db"], "SELECT count(*) FROM orders") == [(0,)]


def test_a_zero_decimal_currency_is_authorised_and_captured_in_whole_units(api, system, provider):
    items = [{"product_name": "Tea", "quantity": 3, "unit_price": 1250}]
    order_id = _order(api, items=items, currency="JPY")["order_id"]
    advance_to(order_id, "COMPLETED")
    _, order = api.get(f"/orders/{order_id}")
    assert order["payment"]["amount_captured"] == 3750
    assert rows(
        system["db"],
        "SELECT amount_minor, authorized_minor, captured_minor FROM payments WHERE order_id = %s",
        order_id,
    ) == [(3750, 3750, 3750)]


@pytest.mark.parametrize(
    ("method", "reason"),
    [
        ("pm_card_chargeDeclined", "Payment declined: card_declined"),
        ("pm_card_authenticationRequired", "Payment declined: authentication_required"),
    ],
)
def test_stripe_test_payment_methods_mean_the_same_on_the_simulator(
    api, system, provider, method, reason
):
    order_id = _order(api, payment_method=method)["order_id"]
    advance_to(order_id, "PAYMENT_FAILED")
    _, order = api.get(f"/orders/{order_id}")
    assert order["status_history"][0]["message"].startswith(reason)
    assert order["payment"]["status"] == "DECLINED"


def test_a_completed_order_shows_its_captured_payment_and_no_refunds(api, system, provider):
    order_id = _order(api, payment_method="pm_card_visa")["order_id"]
    advance_to(order_id, "COMPLETED")
    _, order = api.get(f"/orders/{order_id}")
    assert order["refunds"] == []
    payment = order["payment"]
    assert payment["provider"] == "simulator"
    assert payment["provider_reference"].startswith("pi_sim_")
    assert (payment["status"], payment["currency"]) == ("CAPTURED", "usd")
    amounts = (payment["amount_authorized"], payment["amount_captured"], payment["amount_refunded"])
    assert amounts == (Decimal("125.97"), Decimal("125.97"), 0)


def test_a_partial_refund_is_listed_and_keeps_the_status_then_the_rest_makes_it_refunded(
    api, system, provider
):
    order_id = _order(api)["order_id"]
    advance_to(order_id, "COMPLETED")

    status, first, _ = _refund(api, order_id, {"amount": 25.97, "reason": "one item damaged"})
    assert status == 201
    assert (first["amount"], first["status"], first["reason"]) == (
        Decimal("25.97"),
        "SUCCEEDED",
        "one item damaged",
    )
    assert first["provider_reference"].startswith("re_sim_")
    assert status_of(system["db"], order_id) == "COMPLETED"

    status, rest, _ = _refund(api, order_id, {})
    assert status == 201
    assert rest["amount"] == 100

    _, order = api.get(f"/orders/{order_id}")
    assert order["status"] == "REFUNDED"
    assert [r["amount"] for r in order["refunds"]] == [Decimal("25.97"), 100]
    assert order["payment"]["amount_refunded"] == Decimal("125.97")
    assert order["status_history"][0]["message"] == "Order refunded"
    assert history_of(system["db"], order_id)[-1] == "REFUNDED"
    assert emailed_statuses(system["AWS_ENDPOINT_URL"], order_id)[-1] == "REFUNDED"
    assert [op for op, _ in provider.operations] == ["authorize", "capture", "refund", "refund"]


def test_a_refund_above_what_remains_is_409_and_changes_nothing(api, system, provider):
    order_id = _order(api)["order_id"]
    advance_to(order_id, "FULFILLED")
    assert _refund(api, order_id, {"amount": 100})[0] == 201

    status, body, _ = _refund(api, order_id, {"amount": 25.98})

    assert status == 409
    assert body["error"]["code"] == "REFUND_EXCEEDS_CAPTURED"
    assert rows(system["db"], "SELECT count(*) FROM refunds WHERE order_id = %s", order_id) == [
        (1,)
    ]
    assert [op for op, _ in provider.operations].count("refund") == 1


@pytest.mark.parametrize("reached", ["PENDING", "PAYMENT_CONFIRMED", "CANCELLED"])
def test_refunding_an_order_whose_payment_is_not_captured_is_409(api, system, provider, reached):
    order_id = _order(api)["order_id"]
    if reached == "CANCELLED":
        api.post(f"/orders/{order_id}/cancel")
    else:
        advance_to(order_id, reached)
    status, body, _ = _refund(api, order_id, {})
    assert status == 409
    assert body["error"]["code"] == "INVALID_ORDER_STATE"
    assert rows(system["db"], "SELECT count(*) FROM refunds") == [(0,)]


def test_a_refund_retried_with_its_idempotency_key_replays_and_another_body_is_409(
    api, system, provider
):
    order_id = _order(api)["order_id"]
    advance_to(order_id, "COMPLETED")
    first = _refund(api, order_id, {"amount": 10}, key="refund-1")
    again = _refund(api, order_id, {"amount": 10}, key="refund-1")
    other = _refund(api, order_id, {"amount": 11}, key="refund-1")

    assert (first[0], again[0], other[0]) == (201, 201, 409)
    assert again[1] == first[1]
    assert again[2].get("Idempotent-Replayed") == "true"
    assert other[1]["error"]["code"] == "IDEMPOTENCY_KEY_REUSED"
    assert [op for op, _ in provider.operations].count("refund") == 1


def test_refunding_an_unknown_order_is_404(api, system):
    status, body, _ = _refund(api, "00000000-0000-4000-8000-000000000000", {})
    assert (status, body["error"]["code"]) == (404, "ORDER_NOT_FOUND")


def test_concurrent_refunds_with_one_idempotency_key_make_one_refund(api, system, provider):
    order_id = _order(api)["order_id"]
    advance_to(order_id, "COMPLETED")
    results: list[Any] = []
    gate = threading.Barrier(2)

    def refund() -> None:
        gate.wait(10)
        results.append(
            payment_service.create_refund(
                UUID(order_id), payment_service.RefundRequest(Decimal(5)), "same-key"
            )
        )

    threads = [threading.Thread(target=refund) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)

    assert sorted(replayed for _, replayed in results) == [False, True]
    assert results[0][0]["refund_id"] == results[1][0]["refund_id"]
    assert rows(system["db"], "SELECT count(*) FROM refunds") == [(1,)]
