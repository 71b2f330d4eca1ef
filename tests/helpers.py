"""Small helpers shared by tests: build requests, read queues and the database."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from processor.aws import client
from processor.schemas import CreateOrderRequest


def order_request(email: str = "ada@example.com", **overrides: Any) -> CreateOrderRequest:
    data: dict[str, Any] = {
        "customer_email": email,
        "customer_name": "Ada Lovelace",
        "items": [
            {"product_name": "Widget", "quantity": 2, "unit_price": Decimal("24.99")},
            {"product_name": "Gadget", "quantity": 1, "unit_price": Decimal("75.99")},
        ],
    }
    data.update(overrides)
    return CreateOrderRequest.model_validate(data)


def receive_all(queue_url: str, visibility: int = 30) -> list[dict[str, Any]]:
    """Drain currently visible messages (they stay invisible for `visibility` seconds)."""
    found: list[dict[str, Any]] = []
    while True:
        batch = (
            client("sqs")
            .receive_message(
                QueueUrl=queue_url,
                MaxNumberOfMessages=10,
                VisibilityTimeout=visibility,
                AttributeNames=["ApproximateReceiveCount"],
                MessageAttributeNames=["All"],
            )
            .get("Messages", [])
        )
        if not batch:
            return found
        found.extend(batch)


def count(db: Any, sql: str, *params: Any) -> int:
    with db.cursor() as cur:
        cur.execute(sql, params)
        return int(cur.fetchone()[0])


def rows(db: Any, sql: str, *params: Any) -> list[tuple[Any, ...]]:
    with db.cursor() as cur:
        cur.execute(sql, params)
        return cur.fetchall()
