"""The HTTP API through Chalice's test client, on real PostgreSQL and moto SQS."""

from __future__ import annotations

import copy
import json
from concurrent.futures import ThreadPoolExecutor
from decimal import Decimal

import pytest

from tests.helpers import count, receive_all
from tests.integration.conftest import ORDER


def test_create_order_returns_201_with_the_order(api, system):
    status, body, _ = api.post("/orders", ORDER)
    assert status == 201
    assert set(body) == {
        "order_id",
        "customer_email",
        "customer_name",
        "total_amount",
        "currency",
        "status",
        "items",
        "created_at",
        "message",
    }
    assert body["total_amount"] == Decimal("125.97")
    assert body["status"] == "PENDING"
    assert body["items"][0] == {
        "product_name": "Widget",
        "quantity": 2,
        "unit_price": Decimal("24.99"),
        "subtotal": Decimal("49.98"),
    }


def test_amounts_are_exact_json_numbers(api, system):
    raw = (
        '{"customer_email": "a@b.co", "customer_name": "A", "items": ['
        '{"product_name": "x", "quantity": 1, "unit_price": 0.10},'
        '{"product_name": "y", "quantity": 1, "unit_price": 0.20}]}'
    )
    response = api.client.http.post(
        "/orders", headers={"Content-Type": "application/json"}, body=raw
    )
    assert '"total_amount": 0.30' in response.body.decode()


def test_the_largest_order_the_field_limits_allow_is_stored(api, system):
    """The total column holds 100 x 10,000 x 1,000,000.00, so no valid order hits a limit the
    published document could not state (migration 0002)."""
    items = [{"product_name": "Gold", "quantity": 10_000, "unit_price": 1_000_000}] * 100
    status, body, _ = api.post("/orders", {**ORDER, "items": items})
    assert status == 201, body
    assert body["total_amount"] == Decimal("1000000000000.00")
    assert count(system["db"], "SELECT count(*) FROM orders WHERE total_amount = %s",
                 Decimal("1000000000000.00")) == 1


def test_created_order_is_stored_and_queued_for_processing(api, system):
    _, body, _ = api.post("/orders", ORDER)
    db = system["db"]
    assert count(db, "SELECT count(*) FROM orders WHERE order_id = %s", body["order_id"]) == 1
    assert count(db, "SELECT count(*) FROM order_items WHERE order_id = %s", body["order_id"]) == 2
    messages = receive_all(system["ORDER_QUEUE_URL"])
    assert [json.loads(m["Body"])["order_id"] for m in messages] == [body["order_id"]]
    sent_cleanly = "attempts = 0 AND last_error IS NULL AND published_at IS NULL"
    assert count(db, f"SELECT count(*) FROM outbox WHERE kind = 'order' AND {sent_cleanly}") == 1


def test_order_is_accepted_when_the_queue_is_unavailable(api, system, configure):
    configure(ORDER_QUEUE_URL="http://127.0.0.1:9/000000000000/missing")
    status, body, _ = api.post("/orders", ORDER)
    assert status == 201
    unsent = count(
        system["db"],
        "SELECT count(*) FROM outbox WHERE kind = 'order' AND published_at IS NULL"
        " AND order_id = %s",
        body["order_id"],
    )
    assert unsent == 1


def test_get_order_includes_history_newest_first(api, system):
    _, created, _ = api.post("/orders", ORDER)
    status, body = api.get(f"/orders/{created['order_id']}")
    assert status == 200
    assert body["order_id"] == created["order_id"]
    assert body["updated_at"] == created["created_at"]
    assert [h["status"] for h in body["status_history"]] == ["PENDING"]


def test_unknown_order_is_404(api, system):
    status, body = api.get("/orders/00000000-0000-4000-8000-000000000000")
    assert status == 404
    assert body["error"]["code"] == "ORDER_NOT_FOUND"


@pytest.mark.parametrize("bad_id", ["123", "not-a-uuid", "' OR 1=1 --"])
def test_malformed_order_id_is_400(api, system, bad_id):
    status, body = api.get(f"/orders/{bad_id}")
    assert status == 400
    assert body["error"]["code"] == "VALIDATION_ERROR"


def _with(path: list, value):
    order = copy.deepcopy(ORDER)
    target = order
    for key in path[:-1]:
        target = target[key]
    target[path[-1]] = value
    return order


@pytest.mark.parametrize(
    ("order", "field"),
    [
        (_with(["customer_email"], "nope"), "customer_email"),
        (_with(["customer_name"], ""), "customer_name"),
        (_with(["items"], []), "items"),
        (_with(["items", 0, "quantity"], 0), "items.0.quantity"),
        (_with(["items", 0, "quantity"], 1.5), "items.0.quantity"),
        (_with(["items", 0, "unit_price"], -1), "items.0.unit_price"),
        (_with(["items", 0, "unit_price"], 1.234), "items.0.unit_price"),
        (_with(["items", 0, "product_name"], "x" * 201), "items.0.product_name"),
    ],
)
def test_invalid_input_is_400_with_details_and_changes_nothing(api, system, order, field):
    status, body, _ = api.post("/orders", order)
    assert status == 400
    assert body["error"]["code"] == "VALIDATION_ERROR"
    assert field in [d["field"] for d in body["error"]["details"]]
    assert count(system["db"], "SELECT count(*) FROM orders") == 0
    assert count(system["db"], "SELECT count(*) FROM outbox") == 0


@pytest.mark.parametrize("raw", ["{bad json", "", "[1, 2]", '"string"', '{"a": NaN}'])
def test_malformed_json_is_a_json_400(api, system, raw):
    status, body, _ = api.post("/orders", raw=raw)
    assert status == 400
    assert body["error"]["code"] in {"INVALID_JSON", "VALIDATION_ERROR"}


def test_wrong_content_type_is_415(api, system):
    response = api.client.http.post(
        "/orders", headers={"Content-Type": "text/plain"}, body=json.dumps(ORDER)
    )
    assert response.status_code == 415
    assert json.loads(response.body)["error"]["code"] == "UNSUPPORTED_MEDIA_TYPE"


def test_oversized_body_is_413(api, system):
    order = _with(["customer_name"], "x" * 70_000)
    status, body, _ = api.post("/orders", order)
    assert status == 413
    assert body["error"]["code"] == "PAYLOAD_TOO_LARGE"


def test_wrong_method_is_405_json_with_the_allowed_methods(api, system):
    response = api.client.http.delete("/orders")
    assert response.status_code == 405
    assert json.loads(response.body)["error"]["code"] == "METHOD_NOT_ALLOWED"
    assert sorted(response.headers["Allow"].split(", ")) == ["GET", "POST"]  # RFC 9110


def test_api_key_is_enforced_when_configured(api, system, configure):
    configure(API_KEY="s3cret")
    status, body, _ = api.post("/orders", ORDER)
    assert status == 401
    assert body["error"]["code"] == "UNAUTHORIZED"
    status, _, _ = api.post("/orders", ORDER, headers={"x-api-key": "s3cret"})
    assert status == 201


def test_database_outage_is_a_503_with_retry_after(api, system, monkeypatch):
    from db import connection

    monkeypatch.setenv("DATABASE_URL", "postgresql://nobody@127.0.0.1:9/none")
    connection.reset_dsn()
    try:
        status, body, headers = api.post("/orders", ORDER)
    finally:
        monkeypatch.undo()
        connection.reset_dsn()
    assert status == 503
    assert body["error"]["code"] == "SERVICE_UNAVAILABLE"
    assert headers["Retry-After"] == "5"


# --- Idempotency-Key ---------------------------------------------------------------------


def test_same_key_and_body_replays_the_original_response(api, system):
    headers = {"Idempotency-Key": "key-1"}
    first_status, first, _ = api.post("/orders", ORDER, headers)
    second_status, second, second_headers = api.post("/orders", ORDER, headers)
    assert (first_status, second_status) == (201, 201)
    assert second == first
    assert second_headers.get("Idempotent-Replayed") == "true"
    assert count(system["db"], "SELECT count(*) FROM orders") == 1


def test_same_key_with_a_different_body_is_409(api, system):
    api.post("/orders", ORDER, {"Idempotency-Key": "key-2"})
    status, body, _ = api.post(
        "/orders", _with(["customer_name"], "Someone Else"), {"Idempotency-Key": "key-2"}
    )
    assert status == 409
    assert body["error"]["code"] == "IDEMPOTENCY_KEY_REUSED"
    assert count(system["db"], "SELECT count(*) FROM orders") == 1


def test_different_keys_create_different_orders(api, system):
    api.post("/orders", ORDER, {"Idempotency-Key": "a"})
    api.post("/orders", ORDER, {"Idempotency-Key": "b"})
    assert count(system["db"], "SELECT count(*) FROM orders") == 2


def test_concurrent_requests_with_one_key_create_one_order(system):
    from processor.orders import service as order_service
    from tests.helpers import order_request

    request = order_request()
    with ThreadPoolExecutor(max_workers=8) as pool:
        results = list(
            pool.map(lambda _: order_service.create_order(request, "shared-key"), range(16))
        )
    assert len({body["order_id"] for body, _ in results}) == 1
    assert sum(1 for _, replayed in results if not replayed) == 1
    assert count(system["db"], "SELECT count(*) FROM orders") == 1


@pytest.mark.parametrize("key", ["x" * 256, "caf\u00e9", "tab\there", " lead"])
def test_invalid_idempotency_key_is_400(api, system, key):
    status, _body, _ = api.post("/orders", ORDER, {"Idempotency-Key": key})
    assert status == 400
    assert count(system["db"], "SELECT count(*) FROM orders") == 0


def test_the_longest_idempotency_key_with_inner_spaces_is_accepted(api, system):
    status, _body, _ = api.post("/orders", ORDER, {"Idempotency-Key": "k " * 127 + "k"})
    assert status == 201
