"""Shape stored rows into the API's response dictionaries (one place for the JSON layout)."""

from __future__ import annotations

from typing import Any

from db.repository import HistoryRow, ItemRow, OrderRow
from processor.domain import to_money


def item_view(item: ItemRow) -> dict[str, Any]:
    return {
        "product_name": item.product_name,
        "quantity": item.quantity,
        "unit_price": to_money(item.unit_price),
        "subtotal": to_money(item.unit_price * item.quantity),
    }


def order_view(order: OrderRow, items: list[ItemRow]) -> dict[str, Any]:
    return {
        "order_id": str(order.order_id),
        "customer_email": order.customer_email,
        "customer_name": order.customer_name,
        "total_amount": to_money(order.total_amount),
        "status": order.status,
        "items": [item_view(item) for item in items],
        "created_at": order.created_at,
        "updated_at": order.updated_at,
    }


def history_view(history: list[HistoryRow]) -> list[dict[str, Any]]:
    return [
        {"status": row.status, "changed_at": row.changed_at, "reason": row.reason}
        for row in history
    ]
