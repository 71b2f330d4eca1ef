"""The API's use cases (create, get, list, cancel) driven through fakes: no database, no queue.
The same behaviour on PostgreSQL and SQS is in tests/integration/test_api_*.py."""

from __future__ import annotations

from decimal import Decimal
from uuid import UUID, uuid4

import pytest

from processor.adapters.payments.base import TransientPaymentError
from processor.api.schemas import CreateOrderRequest, ListOrdersQuery
from processor.domain.errors import IdempotencyKeyReused, InvalidOrderState, OrderNotFound
from processor.domain.model import Status
from processor.jsonutil import dumps, loads
from processor.orders import service as orders
from processor.processing import service as processing
from tests.unit.fakes import FakeProvider, FakeSystem


def request(email: str = "ada@example.com", quantity: int = 2) -> CreateOrderRequest:
    return CreateOrderRequest.model_validate(
        {
            "customer_email": email,
            "customer_name": "Ada",
            "items": [
                {"product_name": "Widget", "quantity": quantity, "unit_price": Decimal("24.99")}
            ],
        }
    )


@pytest.fixture
def fake() -> FakeSystem:
    return FakeSystem()


def test_a_created_order_is_pending_saved_with_its_items_and_handed_to_the_publisher(fake):
    body, replayed = orders.create_order(request(), deps=fake.deps)

    order_id = UUID(body["order_id"])
    assert not replayed
    assert body["status"] == "PENDING" and body["total_amount"] == Decimal("49.98")
    assert fake.store.orders[order_id].total_amount == Decimal("49.98")
    assert [item.quantity for item in fake.store.items[order_id]] == [2]
    assert [(r.kind, r.order_id) for r in fake.publisher.new_orders] == [("order", order_id)]


def test_the_same_idempotency_key_and_body_replays_the_first_response(fake):
    first, _ = orders.create_order(request(), "key-1", deps=fake.deps)
    again, replayed = orders.create_order(request(), "key-1", deps=fake.deps)

    assert replayed and again == loads(dumps(first))  # the stored response, as sent
    assert len(fake.store.orders) == 1
    assert len(fake.publisher.new_orders) == 1  # nothing new to send


def test_the_same_idempotency_key_with_another_body_is_refused(fake):
    orders.create_order(request(quantity=1), "key-1", deps=fake.deps)
    with pytest.raises(IdempotencyKeyReused):
        orders.create_order(request(quantity=2), "key-1", deps=fake.deps)
    assert len(fake.store.orders) == 1


def test_an_unknown_order_is_not_found(fake):
    with pytest.raises(OrderNotFound):
        orders.get_order(uuid4(), deps=fake.deps)


def test_a_listing_pages_newest_first_with_a_cursor_to_the_rest(fake):
    created = [
        orders.create_order(request(f"c{n}@example.com"), deps=fake.deps)[0] for n in range(3)
    ]

    first = orders.list_orders(ListOrdersQuery.model_validate({"limit": 2}), deps=fake.deps)
    rest = orders.list_orders(
        ListOrdersQuery.model_validate({"limit": 2, "cursor": first["next_cursor"]}),
        deps=fake.deps,
    )

    newest_first = sorted(created, key=lambda o: (o["created_at"], o["order_id"]), reverse=True)
    assert [o["order_id"] for o in first["orders"] + rest["orders"]] == [
        o["order_id"] for o in newest_first
    ]
    assert first["has_more"] and not rest["has_more"] and rest["next_cursor"] is None


def test_a_pending_order_is_cancelled_and_its_notifications_are_published(fake):
    order_id = UUID(orders.create_order(request(), deps=fake.deps)[0]["order_id"])

    view = orders.cancel_order(order_id, deps=fake.deps)

    assert view["status"] == "CANCELLED"
    assert fake.store.statuses(order_id) == ["PENDING", "CANCELLED"]
    assert fake.publisher.notified == [order_id]


def test_cancelling_twice_is_a_harmless_no_op(fake):
    order_id = UUID(orders.create_order(request(), deps=fake.deps)[0]["order_id"])
    orders.cancel_order(order_id, deps=fake.deps)

    assert orders.cancel_order(order_id, deps=fake.deps)["status"] == "CANCELLED"
    assert fake.store.statuses(order_id) == ["PENDING", "CANCELLED"]
    assert fake.publisher.notified == [order_id]  # the second cancel changed nothing


def test_a_processing_order_whose_charge_started_can_no_longer_be_cancelled():
    fake = FakeSystem(provider=FakeProvider(transient_failures=3))  # the charge stays open
    order_id = UUID(orders.create_order(request(), deps=fake.deps)[0]["order_id"])
    with pytest.raises(TransientPaymentError):
        processing.process_order(order_id, deps=fake.deps)

    with pytest.raises(InvalidOrderState):
        orders.cancel_order(order_id, deps=fake.deps)
    assert fake.store.statuses(order_id) == ["PENDING", "PROCESSING"]


def test_a_processing_order_is_cancelled_while_its_charge_has_not_started(fake):
    order_id = UUID(orders.create_order(request(), deps=fake.deps)[0]["order_id"])
    processing.STEPS[Status.PENDING](order_id, fake.deps)

    assert orders.cancel_order(order_id, deps=fake.deps)["status"] == "CANCELLED"
    assert fake.store.statuses(order_id) == ["PENDING", "PROCESSING", "CANCELLED"]
