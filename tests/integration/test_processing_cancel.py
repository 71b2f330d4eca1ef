"""Cancellation against the processor: allowed before payment starts, refused after with the
current status, idempotent, and respected by a message that is already in flight."""

from __future__ import annotations

import threading
from typing import Any
from uuid import UUID

import pytest

from processor import bootstrap
from processor.adapters.payments.base import TransientPaymentError
from processor.domain.errors import InvalidOrderState
from processor.orders import service as order_service
from processor.processing import service as processing
from tests.helpers import (
    BlockingProvider,
    advance_to,
    consume_once,
    count,
    emailed_statuses,
    history_of,
    order_request,
    payments_of,
    status_of,
)

pytestmark = pytest.mark.usefixtures("invariants_hold")


def _create(email: str = "ada@example.com") -> str:
    body, _ = order_service.create_order(order_request(email))
    return body["order_id"]


def _cancel(api: Any, order_id: str) -> tuple[int, Any]:
    status, body, _ = api.post(f"/orders/{order_id}/cancel")
    return status, body


def test_a_pending_order_is_cancelled_and_its_queued_message_changes_nothing(api, system, provider):
    order_id = _create()
    status, body = _cancel(api, order_id)
    assert status == 200
    assert body["status"] == "CANCELLED"
    assert [h["status"] for h in body["status_history"]] == ["CANCELLED", "PENDING"]
    assert [h["message"] for h in body["status_history"]] == [
        "Order cancelled: cancelled by customer",
        "Order created",
    ]

    outcome = consume_once(system["ORDER_QUEUE_URL"])  # the message was already queued
    assert len(outcome.done) == 1
    assert status_of(system["db"], order_id) == "CANCELLED"
    assert history_of(system["db"], order_id) == ["PENDING", "CANCELLED"]
    assert payments_of(system["db"], order_id) == []
    assert provider.calls == []
    assert emailed_statuses(system["AWS_ENDPOINT_URL"], order_id) == ["PENDING", "CANCELLED"]


def test_an_order_in_processing_is_cancelled_before_payment_and_never_charged(
    api, system, provider
):
    order_id = _create()
    advance_to(order_id, "PROCESSING")  # the processor got this far, then the customer cancels
    status, body = _cancel(api, order_id)
    assert status == 200
    assert body["status"] == "CANCELLED"

    assert processing.process_order(UUID(order_id)) == "CANCELLED"
    assert history_of(system["db"], order_id) == ["PENDING", "PROCESSING", "CANCELLED"]
    assert payments_of(system["db"], order_id) == []
    assert provider.calls == []
    assert emailed_statuses(system["AWS_ENDPOINT_URL"], order_id) == [
        "PENDING",
        "PROCESSING",
        "CANCELLED",
    ]


@pytest.mark.parametrize(
    ("email", "reached"),
    [
        ("ada@example.com", "FULFILLED"),
        ("ada@example.com", "COMPLETED"),
        ("ada+decline@example.com", "PAYMENT_FAILED"),
    ],
)
def test_cancelling_after_capture_or_decline_is_409_with_the_current_status(
    api, system, provider, email, reached
):
    order_id = _create(email)
    advance_to(order_id, reached)
    before = history_of(system["db"], order_id)

    status, body = _cancel(api, order_id)
    assert status == 409
    assert body["error"]["code"] == "INVALID_ORDER_STATE"
    assert body["error"]["details"] == [{"field": "status", "message": reached}]
    assert reached in body["error"]["message"]
    assert status_of(system["db"], order_id) == reached
    assert history_of(system["db"], order_id) == before


def test_cancelling_once_the_charge_has_started_is_409_even_in_processing(api, system, provider):
    order_id = _create("ada+unavailable@example.com")
    with pytest.raises(TransientPaymentError):
        processing.process_order(UUID(order_id))  # payment started, outcome unknown

    status, body = _cancel(api, order_id)
    assert status == 409
    assert body["error"]["details"] == [{"field": "status", "message": "PROCESSING"}]
    assert status_of(system["db"], order_id) == "PROCESSING"


def test_cancelling_twice_succeeds_both_times_and_changes_the_order_once(api, system, provider):
    order_id = _create()
    first_status, first = _cancel(api, order_id)
    second_status, second = _cancel(api, order_id)
    assert (first_status, second_status) == (200, 200)
    assert first["status"] == second["status"] == "CANCELLED"
    assert second["status_history"] == first["status_history"]
    assert history_of(system["db"], order_id) == ["PENDING", "CANCELLED"]
    assert emailed_statuses(system["AWS_ENDPOINT_URL"], order_id) == ["PENDING", "CANCELLED"]


def test_cancelling_an_unknown_order_is_404(api, system):
    status, body = _cancel(api, "00000000-0000-4000-8000-000000000000")
    assert status == 404
    assert body["error"]["code"] == "ORDER_NOT_FOUND"


def test_a_cancel_arriving_during_the_authorisation_is_refused_at_once_and_nothing_waits(system):
    provider = BlockingProvider()
    bootstrap.set_payment_provider(provider)
    order_id = _create()
    results: dict[str, Any] = {}

    def process() -> None:
        results["processed"] = processing.process_order(UUID(order_id))

    processor_thread = threading.Thread(target=process)
    processor_thread.start()
    assert provider.entered.wait(10)  # the authorisation is in flight, no transaction open
    locks_held = count(
        system["db"],
        "SELECT count(*) FROM pg_stat_activity WHERE state = 'idle in transaction'"
        " AND datname = current_database()",
    )
    with pytest.raises(InvalidOrderState) as refused:
        order_service.cancel_order(UUID(order_id))
    provider.release.set()
    processor_thread.join(10)

    assert locks_held == 0
    assert refused.value.details == [{"field": "status", "message": "PROCESSING"}]
    assert results["processed"] == "COMPLETED"
    assert "CANCELLED" not in history_of(system["db"], order_id)
    assert len(provider.calls) == 1


def test_cancelling_a_payment_confirmed_order_voids_the_authorisation_and_captures_nothing(
    api, system, provider
):
    order_id = _create()
    advance_to(order_id, "PAYMENT_CONFIRMED")

    status, body = _cancel(api, order_id)

    assert status == 200
    assert body["status"] == "CANCELLED"
    assert body["status_history"][0]["message"] == (
        "Order cancelled: cancelled by customer (payment authorisation voided)"
    )
    assert body["payment"]["status"] == "VOIDED"
    assert body["payment"]["amount_captured"] == 0
    assert [op for op, _ in provider.operations] == ["authorize", "cancel"]
    assert processing.process_order(UUID(order_id)) == "CANCELLED"  # the redelivery: no capture
    assert [op for op, _ in provider.operations] == ["authorize", "cancel"]
    assert history_of(system["db"], order_id) == [
        "PENDING",
        "PROCESSING",
        "PAYMENT_CONFIRMED",
        "CANCELLED",
    ]


def test_cancelling_a_captured_order_is_409_pointing_to_refunds(api, system, provider):
    order_id = _create()
    advance_to(order_id, "COMPLETED")

    status, body = _cancel(api, order_id)

    assert status == 409
    assert "/refunds" in body["error"]["message"]
    assert [op for op, _ in provider.operations] == ["authorize", "capture"]
