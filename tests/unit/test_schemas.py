from decimal import Decimal

import pytest
from pydantic import ValidationError

from processor.api.schemas import MAX_TOTAL, CreateOrderRequest, ListOrdersQuery
from processor.jsonutil import loads


def valid(**overrides):
    data = {
        "customer_email": "Ada@Example.com",
        "customer_name": "Ada",
        "items": [{"product_name": "Widget", "quantity": 2, "unit_price": Decimal("24.99")}],
    }
    data.update(overrides)
    return data


def item(**overrides):
    data = {"product_name": "Widget", "quantity": 1, "unit_price": Decimal("1.00")}
    data.update(overrides)
    return data


def test_valid_order_is_accepted_and_email_normalised():
    order = CreateOrderRequest.model_validate(valid())
    assert order.customer_email == "ada@example.com"
    assert order.total() == Decimal("49.98")


def test_total_of_tenth_and_fifth_is_exactly_three_tenths():
    body = loads(
        '{"customer_email": "a@b.co", "customer_name": "A", "items": ['
        '{"product_name": "x", "quantity": 1, "unit_price": 0.10},'
        '{"product_name": "y", "quantity": 1, "unit_price": 0.20}]}'
    )
    assert str(CreateOrderRequest.model_validate(body).total()) == "0.30"


@pytest.mark.parametrize(
    "overrides",
    [
        {"customer_email": "not-an-email"},
        {"customer_email": "a@b"},
        {"customer_email": "x" * 250 + "@b.com"},
        {"customer_name": ""},
        {"customer_name": "   "},
        {"customer_name": "x" * 201},
        {"items": []},
        {"items": [item()] * 101},
        {"items": [item(product_name="")]},
        {"items": [item(product_name="x" * 201)]},
        {"items": [item(quantity=0)]},
        {"items": [item(quantity=10_001)]},
        {"items": [item(quantity=Decimal("1.5"))]},
        {"items": [item(quantity="2")]},
        {"items": [item(quantity=True)]},
        {"items": [item(unit_price=Decimal("-0.01"))]},
        {"items": [item(unit_price=Decimal("1.001"))]},
        {"items": [item(unit_price="1.00")]},
        {"items": [item(unit_price=1.5)]},
        {"items": [item(unit_price=Decimal("1000000.01"))]},
        {"items": [item(extra="field")]},
        {"unexpected": 1},
        {"customer_name": "a\x00b"},
        {"customer_name": "\u3000\u2028"},
        {"items": [item(product_name="\x00")]},
        {"customer_email": "x" * 65 + "@example.com"},
    ],
)
def test_invalid_orders_are_rejected(overrides):
    with pytest.raises(ValidationError):
        CreateOrderRequest.model_validate(valid(**overrides))


def test_the_largest_order_the_field_rules_allow_is_valid():
    """No limit on the total beyond the fields' own: JSON Schema (and so the published
    document) cannot express a limit on a sum, so there must be none the fields do not imply."""
    top = item(quantity=10_000, unit_price=Decimal("1000000"))
    order = CreateOrderRequest.model_validate(valid(items=[top] * 100))
    assert order.total() == MAX_TOTAL == Decimal("1000000000000.00")


def test_a_whole_quantity_written_with_a_fraction_is_that_integer():
    """`2.0` is the integer 2 in JSON Schema, which the document's `type: integer` promises."""
    order = CreateOrderRequest.model_validate(valid(items=[item(quantity=Decimal("2.0"))]))
    assert order.items[0].quantity == 2
    assert type(order.items[0].quantity) is int


def test_boundaries_are_inclusive():
    order = CreateOrderRequest.model_validate(
        valid(
            customer_name="x" * 200,
            items=[item(product_name="p" * 200, quantity=10_000, unit_price=Decimal("0"))] * 100,
        )
    )
    assert order.total() == Decimal("0.00")


@pytest.mark.parametrize(
    "params",
    [
        {"limit": "0"},
        {"limit": "101"},
        {"limit": "abc"},
        {"offset": "-1"},
        {"status": "SHIPPED"},
        {"customer_email": "nope"},
        {"unknown": "1"},
        {"cursor": "abc"},
        {"cursor": "0" * 45},
        {"cursor": "A" * 46},
    ],
)
def test_invalid_list_queries_are_rejected(params):
    with pytest.raises(ValidationError):
        ListOrdersQuery.model_validate(params)


def test_cursor_and_offset_combine():
    """Every mix of valid parameters is valid: the document cannot state exclusions."""
    query = ListOrdersQuery.model_validate({"cursor": "0" * 46, "offset": "5"})
    assert (query.cursor, query.offset) == ("0" * 46, 5)


def test_list_query_defaults():
    query = ListOrdersQuery.model_validate({})
    assert (query.limit, query.offset, query.status, query.cursor) == (50, 0, None, None)
