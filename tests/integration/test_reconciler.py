"""The reconciler against localstripe: each finding comes from a real disagreement made on
purpose at the provider (a capture behind the app's back, a refund made only there, a payment
for an order we do not have), and `--fix` repairs exactly the safe ones."""

from __future__ import annotations

import json
import urllib.parse
import urllib.request
import uuid
from collections.abc import Iterator
from typing import Any
from uuid import UUID

import pytest

from processor import bootstrap
from processor.adapters.payments.stripe_rest import StripeProvider
from processor.devstack import localstripe
from processor.orders import service as order_service
from processor.reconciliation.reconciler import Options, Report, reconcile
from tests.helpers import advance_to, count, order_request
from tests.stripe_proxy import ProxyState, start_proxy

KEY = "sk_test_reconciler"
QUIET = Options(include_queues=False)


@pytest.fixture
def stripe(system: dict[str, Any], emulator: localstripe.LocalStripe) -> Iterator[ProxyState]:
    """The provider through the fault proxy, localstripe emptied like the database: the
    reconciler's window must see only this test's payments."""
    flush = urllib.request.Request(emulator.api_base + "/_config/data", method="DELETE")
    urllib.request.urlopen(flush, timeout=5).close()
    server, state = start_proxy(emulator.api_base)
    base = f"http://127.0.0.1:{server.server_address[1]}"
    bootstrap.set_payment_provider(StripeProvider(base, lambda: KEY, timeout_seconds=5))
    yield state
    bootstrap.set_payment_provider(None)
    server.shutdown()
    server.server_close()


def behind_the_apps_back(state: ProxyState, path: str, **form: Any) -> dict[str, Any]:
    """A call straight to localstripe, as someone in Stripe's dashboard would make it."""
    data = urllib.parse.urlencode(form).encode()
    request = urllib.request.Request(state.upstream + path, data=data, method="POST")
    request.add_header("Authorization", f"Bearer {KEY}")
    with urllib.request.urlopen(request, timeout=5) as response:
        body: dict[str, Any] = json.loads(response.read())
        return body


def order_at(status: str) -> tuple[UUID, str]:
    body, _ = order_service.create_order(order_request(payment_method="pm_card_visa"))
    order_id = UUID(body["order_id"])
    advance_to(order_id, status)
    return order_id, order_service.get_order(order_id)["payment"]["provider_reference"]


def kinds(report: Report) -> dict[str, set[str | None]]:
    found: dict[str, set[str | None]] = {}
    for finding in report.findings:
        found.setdefault(finding.kind, set()).add(finding.order_id)
    return found


def test_orders_that_agree_with_the_provider_give_no_findings(stripe: ProxyState) -> None:
    order_at("COMPLETED")
    order_at("PAYMENT_CONFIRMED")
    report = reconcile(QUIET)
    assert report.findings == []
    assert report.provider == "stripe"
    assert report.orders_checked == 2
    # two retrievals plus one page of events and one of refunds
    assert report.provider_calls == 4


def test_a_capture_behind_the_apps_back_is_found_and_fix_records_it_and_ships_the_order(
        stripe: ProxyState, system: dict[str, Any]) -> None:
    order_id, intent = order_at("PAYMENT_CONFIRMED")
    behind_the_apps_back(stripe, f"/v1/payment_intents/{intent}/capture")

    found = reconcile(QUIET)
    assert kinds(found) == {"capture_not_recorded": {str(order_id)}}
    assert found.repaired == []
    assert order_service.get_order(order_id)["status"] == "PAYMENT_CONFIRMED"

    fixed = reconcile(Options(include_queues=False, fix=True))
    assert [(r.kind, r.order_id) for r in fixed.repaired] == [
        ("capture_not_recorded", str(order_id))]
    order = order_service.get_order(order_id)
    assert order["status"] == "FULFILLED"
    assert order["payment"]["amount_captured"] == order["total_amount"]
    assert reconcile(QUIET).findings == []


def test_a_refund_made_only_at_the_provider_is_found_and_fix_adds_it_to_the_order(
        stripe: ProxyState) -> None:
    order_id, intent = order_at("COMPLETED")
    refund = behind_the_apps_back(stripe, "/v1/refunds", payment_intent=intent, amount=1000)

    assert kinds(reconcile(QUIET)) == {"refund_not_recorded": {str(order_id)}}

    fixed = reconcile(Options(include_queues=False, fix=True))
    assert [r.kind for r in fixed.repaired] == ["refund_not_recorded"]
    order = order_service.get_order(order_id)
    assert [(r["provider_reference"], r["amount"]) for r in order["refunds"]] == [
        (refund["id"], 10)]
    assert order["status"] == "COMPLETED"  # partly refunded: the status stays
    assert reconcile(QUIET).findings == []


def test_a_full_refund_at_the_provider_once_recorded_makes_the_order_refunded(
        stripe: ProxyState) -> None:
    order_id, intent = order_at("COMPLETED")
    behind_the_apps_back(stripe, "/v1/refunds", payment_intent=intent)
    reconcile(Options(include_queues=False, fix=True))
    assert order_service.get_order(order_id)["status"] == "REFUNDED"


def test_payments_naming_no_order_of_ours_or_another_amount_are_reported_never_repaired(
        stripe: ProxyState) -> None:
    order_id, _ = order_at("COMPLETED")
    stranger = str(uuid.uuid4())
    for named, amount in ((stranger, 500), (str(order_id), 99)):
        behind_the_apps_back(stripe, "/v1/payment_intents", amount=amount, currency="usd",
                             payment_method="pm_card_visa", confirm="true",
                             **{"metadata[order_id]": named})

    report = reconcile(Options(include_queues=False, fix=True))
    assert kinds(report) == {"unknown_order_payment": {stranger},
                             "payment_amount_mismatch": {str(order_id)}}
    assert report.repaired == []


def test_every_run_is_recorded_and_the_next_window_starts_where_the_last_one_ended(
        stripe: ProxyState, system: dict[str, Any]) -> None:
    first = reconcile(QUIET)
    second = reconcile(QUIET)
    assert second.window_start < first.window_end
    assert count(system["db"], "SELECT count(*) FROM reconciler_runs") == 2


def test_an_unreachable_provider_is_a_finding_not_a_crash(stripe: ProxyState) -> None:
    order_at("PAYMENT_CONFIRMED")
    stripe.inject("/v1/payment_intents/", *["500"] * 10)
    report = reconcile(QUIET)
    assert set(kinds(report)) == {"provider_unreachable"}


def test_a_cancelled_order_whose_void_never_reached_the_provider_is_voided_by_fix(
        stripe: ProxyState) -> None:
    """The cancel committed, then the process died before the void: the order is CANCELLED
    and its authorisation still holds the customer's money at the provider."""
    from datetime import UTC, datetime

    from db.repository import Transition
    from db.uow import UnitOfWork

    order_id, intent = order_at("PAYMENT_CONFIRMED")
    with UnitOfWork() as uow:
        uow.orders.transition(Transition(order_id, ["PAYMENT_CONFIRMED"], "CANCELLED",
                                         datetime.now(UTC), "cancelled by customer"))
        uow.commit()

    assert kinds(reconcile(QUIET))["authorization_not_voided"] == {str(order_id)}

    fixed = reconcile(Options(include_queues=False, fix=True))
    assert [(r.kind, r.order_id) for r in fixed.repaired] == [
        ("authorization_not_voided", str(order_id))]
    assert stripe.forwarded.count(("POST", f"/v1/payment_intents/{intent}/cancel")) == 1
    assert order_service.get_order(order_id)["payment"]["status"] == "VOIDED"
    assert "authorization_not_voided" not in kinds(reconcile(QUIET))
