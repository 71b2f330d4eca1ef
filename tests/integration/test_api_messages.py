"""Validation messages say what is wrong and what is allowed in the caller's words (no regular
expressions or Python reprs), while `details[].field` stays machine-readable; a cancel's
optional reason is kept in the history."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from tests.helpers import count
from tests.integration.conftest import ORDER

INTERNALS = ("Decimal(", "^[", "\\x00", "Input should", "String should", "Value error")


def _order_with(path: list[Any], value: Any) -> dict[str, Any]:
    order = copy.deepcopy(ORDER)
    target: Any = order
    for key in path[:-1]:
        target = target[key]
    target[path[-1]] = value
    return order


@pytest.mark.parametrize(
    ("path", "value", "field", "message"),
    [
        (["customer_name"], "Ada\u0000Lovelace", "customer_name",
         "must not contain NUL characters (\\u0000)"),
        (["customer_name"], "   ", "customer_name", "must not be empty or only whitespace"),
        (["items", 0, "product_name"], "\u3000", "items.0.product_name",
         "must not be empty or only whitespace"),
        (["items", 0, "unit_price"], 1000000.01, "items.0.unit_price",
         "must be at most 1,000,000.00"),
        (["items", 0, "quantity"], 0, "items.0.quantity", "must be at least 1"),
        (["items", 0, "quantity"], 1.5, "items.0.quantity", "must be a whole number"),
        (["customer_name"], "x" * 201, "customer_name", "must be at most 200 characters"),
        (["items"], [], "items", "must have at least 1 item(s)"),
        (["gift"], True, "gift", "is not a known field; remove it"),
    ],
)
def test_a_bad_field_gets_a_message_in_words_and_its_dotted_field_name(
    api, system, path, value, field, message
):
    status, body, _ = api.post("/orders", _order_with(path, value))
    assert status == 400
    assert body["error"]["details"] == [{"field": field, "message": message}]
    assert count(system["db"], "SELECT count(*) FROM orders") == 0


def test_a_bad_cursor_says_where_cursors_come_from(api, system):
    status, body = api.get("/orders?cursor=not-a-cursor")
    assert status == 400
    assert body["error"]["details"] == [{
        "field": "cursor",
        "message": "must be the next_cursor of a previous page (46 lowercase hexadecimal digits)",
    }]


def test_an_unencoded_plus_in_the_email_filter_hints_at_percent_2b(api, system):
    status, body = api.get("/orders?customer_email=ada+decline@example.com")
    assert status == 400
    (detail,) = body["error"]["details"]
    assert detail["field"] == "customer_email"
    assert "%2B" in detail["message"]
    status, body = api.get("/orders?customer_email=ada%2Bdecline@example.com")
    assert status == 200


def test_a_misspelt_email_filter_gets_no_plus_hint(api, system):
    status, body = api.get("/orders?customer_email=ada.example.com")
    assert status == 400
    (detail,) = body["error"]["details"]
    assert "%2B" not in detail["message"]
    assert detail["message"].startswith("must be a valid email address")


@pytest.mark.parametrize(
    "query", ["limit=abc", "limit=0", "offset=-1", "status=SHIPPED", "colour=red"]
)
def test_query_messages_carry_no_pydantic_internals(api, system, query):
    status, body = api.get(f"/orders?{query}")
    assert status == 400
    for detail in body["error"]["details"]:
        assert not any(text in detail["message"] for text in INTERNALS), detail


def test_an_unknown_status_lists_the_statuses_plainly(api, system):
    _, body = api.get("/orders?status=SHIPPED")
    (detail,) = body["error"]["details"]
    assert detail["message"].startswith("must be one of PENDING, PROCESSING")
    assert "'" not in detail["message"]


def test_a_cancel_reason_is_recorded_in_the_history(api, system):
    _, created, _ = api.post("/orders", ORDER)
    path = f"/orders/{created['order_id']}/cancel"
    status, body, _ = api.post(path, {"reason": "  ordered the wrong size "})
    assert status == 200
    assert body["status_history"][0]["message"] == "Order cancelled: ordered the wrong size"


@pytest.mark.parametrize(
    ("cancel_body", "field"),
    [({"reason": ""}, "reason"), ({"why": "x"}, "why"), ({"reason": "a\u0000b"}, "reason")],
)
def test_a_bad_cancel_body_is_refused_and_the_order_stays_pending(api, system, cancel_body, field):
    _, created, _ = api.post("/orders", ORDER)
    status, body, _ = api.post(f"/orders/{created['order_id']}/cancel", cancel_body)
    assert status == 400
    assert [d["field"] for d in body["error"]["details"]] == [field]
    assert count(system["db"], "SELECT count(*) FROM orders WHERE status = 'CANCELLED'") == 0
