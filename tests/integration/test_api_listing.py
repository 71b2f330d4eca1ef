"""GET /orders: limits, filters, newest-first ordering, offset and cursor pagination."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from processor.orders import service as order_service
from tests.helpers import order_request


@pytest.fixture
def orders(system):
    """Seven orders: four for ada (two of them cancelled), three for bob, created in order,
    two of them with the same timestamp to exercise the order_id tie-break."""
    created = []
    for n in range(7):
        email = "ada@example.com" if n < 4 else "bob@example.com"
        body, _ = order_service.create_order(order_request(email))
        created.append(body["order_id"])
    for order_id in created[:2]:
        order_service.cancel_order(order_service.parse_order_id(order_id))
    base = datetime(2026, 1, 1, tzinfo=UTC)
    with system["db"].cursor() as cur:
        for n, order_id in enumerate(created):
            when = base + timedelta(minutes=min(n, 5))  # orders 5 and 6 share a timestamp
            cur.execute("UPDATE orders SET created_at = %s WHERE order_id = %s", (when, order_id))
    return created


def _ids(body):
    return [o["order_id"] for o in body["orders"]]


def _expected_order(created):
    """Newest first; equal timestamps broken by order_id descending."""
    tail = sorted(created[5:], reverse=True)
    return tail + list(reversed(created[:5]))


def test_orders_are_listed_newest_first_with_a_stable_tie_break(api, orders):
    status, body = api.get("/orders")
    assert status == 200
    assert _ids(body) == _expected_order(orders)
    assert (body["count"], body["limit"], body["offset"], body["has_more"]) == (7, 50, 0, False)
    assert body["next_cursor"] is None


def test_limit_and_offset_page_through_the_list(api, orders):
    expected = _expected_order(orders)
    _, first = api.get("/orders?limit=3")
    _, second = api.get("/orders?limit=3&offset=3")
    _, third = api.get("/orders?limit=3&offset=6")
    assert _ids(first) + _ids(second) + _ids(third) == expected
    assert (first["has_more"], second["has_more"], third["has_more"]) == (True, True, False)


def test_cursor_pages_cover_the_list_once_in_order(api, orders):
    seen, path = [], "/orders?limit=2"
    while True:
        status, page = api.get(path)
        assert status == 200
        seen += _ids(page)
        if not page["has_more"]:
            assert page["next_cursor"] is None
            break
        path = f"/orders?limit=2&cursor={page['next_cursor']}"
    assert seen == _expected_order(orders)


def test_filters_by_status_and_customer_email(api, orders):
    _, cancelled = api.get("/orders?status=CANCELLED")
    assert sorted(_ids(cancelled)) == sorted(orders[:2])
    _, bob = api.get("/orders?customer_email=BOB@example.com")
    assert sorted(_ids(bob)) == sorted(orders[4:])
    _, both = api.get("/orders?status=PENDING&customer_email=ada@example.com")
    assert sorted(_ids(both)) == sorted(orders[2:4])


def test_cursor_pagination_respects_filters(api, orders):
    query = "/orders?customer_email=ada@example.com&limit=3"
    _, first = api.get(query)
    _, rest = api.get(f"{query}&cursor={first['next_cursor']}")
    assert _ids(first) + _ids(rest) == [o for o in _expected_order(orders) if o in orders[:4]]


def test_offset_after_a_cursor_skips_that_many_more(api, orders):
    _, first = api.get("/orders?limit=2")
    _, skipped = api.get(f"/orders?limit=2&offset=1&cursor={first['next_cursor']}")
    assert _ids(skipped) == _expected_order(orders)[3:5]
    assert skipped["offset"] == 1


def test_a_well_formed_cursor_no_order_reached_is_an_empty_page_not_an_error(api, orders):
    status, body = api.get("/orders?cursor=" + "0" * 46)  # before 1970: nothing older
    assert (status, body["orders"], body["has_more"]) == (200, [], False)


@pytest.mark.parametrize(
    "query",
    [
        "limit=0",
        "limit=101",
        "limit=ten",
        "offset=-1",
        "status=SHIPPED",
        "customer_email=not-an-email",
        "cursor=%25%25%25",
        "cursor=bm90LWEtY3Vyc29y",
        "cursor=abc&offset=2",
        "cursor=" + "0" * 45,
        "colour=blue",
    ],
)
def test_out_of_range_or_unknown_parameters_are_400(api, orders, query):
    status, body = api.get(f"/orders?{query}")
    assert status == 400
    assert body["error"]["code"] == "VALIDATION_ERROR"
