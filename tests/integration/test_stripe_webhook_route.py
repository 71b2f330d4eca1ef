"""`POST /webhooks/stripe` through Chalice's test client on the real database: only a fresh,
correctly signed event is stored, once; everything else is refused with nothing stored."""

from __future__ import annotations

import hashlib
import hmac
import json
import time
from typing import Any

import pytest

from tests.helpers import count

SECRET = "whsec_route_test"
PATH = "/webhooks/stripe"


def event(event_id: str = "evt_route_1", event_type: str = "customer.created") -> bytes:
    body = {"id": event_id, "type": event_type, "created": 1_796_000_000,
            "data": {"object": {"id": "cus_1", "metadata": {}}}}
    return json.dumps(body).encode()


def signed(body: bytes, secret: str = SECRET, timestamp: int | None = None) -> str:
    moment = int(time.time()) if timestamp is None else timestamp
    digest = hmac.new(secret.encode(), f"{moment}.".encode() + body, hashlib.sha256).hexdigest()
    return f"t={moment},v1={digest}"


@pytest.fixture
def webhook(api: Any, configure: Any) -> Any:
    configure(STRIPE_WEBHOOK_SECRET=SECRET, API_KEY="an-api-key-the-webhook-never-sends")
    return api


def stored(system: dict[str, Any]) -> int:
    return count(system["db"], "SELECT count(*) FROM provider_events")


def test_a_signed_event_is_accepted_without_an_api_key_and_stored_once(
        webhook: Any, system: dict[str, Any]) -> None:
    body = event()
    status, answer, _ = webhook.post(PATH, raw=body, headers={"Stripe-Signature": signed(body)})
    assert status == 200, answer
    assert answer == {"received": True, "duplicate": False, "event_id": "evt_route_1",
                      "outcome": "ignored"}
    status, again, _ = webhook.post(PATH, raw=body, headers={"Stripe-Signature": signed(body)})
    assert (status, again["duplicate"]) == (200, True)
    assert stored(system) == 1


def test_the_api_key_still_guards_the_order_routes_beside_the_public_webhook(
        webhook: Any, system: dict[str, Any]) -> None:
    status, answer = webhook.get("/orders")
    assert (status, answer["error"]["code"]) == (401, "UNAUTHORIZED")


@pytest.mark.parametrize(
    ("headers", "reason"),
    [
        ({}, "missing"),
        ({"Stripe-Signature": "garbage"}, "no timestamp or no v1"),
        ({"Stripe-Signature": "t=1,v1="}, "no timestamp or no v1"),
        ({"Stripe-Signature": signed(event(), secret="whsec_forged")}, "matches"),
        ({"Stripe-Signature": signed(event(), timestamp=int(time.time()) - 600)}, "old"),
    ],
)
def test_a_missing_malformed_forged_or_stale_signature_is_a_400_and_stores_nothing(
        webhook: Any, system: dict[str, Any], headers: dict[str, str], reason: str) -> None:
    status, answer, _ = webhook.post(PATH, raw=event(), headers=headers)
    assert status == 400
    assert answer["error"]["code"] == "INVALID_SIGNATURE"
    assert reason in answer["error"]["message"]
    assert stored(system) == 0


def test_a_signed_body_that_is_not_an_event_is_a_400_and_stores_nothing(
        webhook: Any, system: dict[str, Any]) -> None:
    body = json.dumps({"id": "evt_x", "type": "x"}).encode()
    status, answer, _ = webhook.post(PATH, raw=body, headers={"Stripe-Signature": signed(body)})
    assert (status, answer["error"]["code"]) == (400, "VALIDATION_ERROR")
    assert {d["field"] for d in answer["error"]["details"]} == {"created", "data.object"}
    assert stored(system) == 0


def test_a_body_over_the_limit_is_a_413_before_its_signature_is_checked(
        webhook: Any, system: dict[str, Any], configure: Any) -> None:
    configure(WEBHOOK_MAX_BODY_BYTES="100")
    body = event() + b" " * 100
    status, answer, _ = webhook.post(PATH, raw=body, headers={"Stripe-Signature": signed(body)})
    assert (status, answer["error"]["code"]) == (413, "PAYLOAD_TOO_LARGE")
    assert stored(system) == 0


def test_without_a_signing_secret_the_webhook_answers_503_and_stores_nothing(
        api: Any, system: dict[str, Any], configure: Any, monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("STRIPE_WEBHOOK_SECRET", raising=False)
    monkeypatch.delenv("STRIPE_WEBHOOK_SECRET_ARN", raising=False)
    configure()
    body = event()
    status, answer, _ = api.post(PATH, raw=body, headers={"Stripe-Signature": signed(body)})
    assert (status, answer["error"]["code"]) == (503, "WEBHOOK_NOT_CONFIGURED")
    assert stored(system) == 0


def test_the_signing_secret_is_read_from_secrets_manager_by_its_arn(
        api: Any, system: dict[str, Any], configure: Any, monkeypatch: pytest.MonkeyPatch,
) -> None:
    from processor.adapters import secrets
    from processor.adapters.aws import client

    arn = client("secretsmanager").create_secret(Name="webhook-test", SecretString=SECRET)["ARN"]
    monkeypatch.delenv("STRIPE_WEBHOOK_SECRET", raising=False)
    configure(STRIPE_WEBHOOK_SECRET_ARN=arn)
    secrets.forget()
    body = event("evt_from_arn")
    status, answer, _ = api.post(PATH, raw=body, headers={"Stripe-Signature": signed(body)})
    assert (status, answer["event_id"]) == (200, "evt_from_arn")
    assert stored(system) == 1
