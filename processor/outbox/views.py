"""The order as notifications describe it, built from stored rows.

Separate from the API's views (processor.api.views): an email or an SNS event is a contract
with customers and subscribers of its own, and must not change when a response field does.
"""

from __future__ import annotations

from db.repository import ItemRow, OrderRow
from processor.adapters.notifications import LineSummary, OrderSummary
from processor.domain.model import to_money


def notification_view(order: OrderRow, items: list[ItemRow]) -> OrderSummary:
    return {
        "order_id": str(order.order_id),
        "customer_email": order.customer_email,
        "customer_name": order.customer_name,
        "total_amount": to_money(order.total_amount),
        "items": [_line(item) for item in items],
    }


def _line(item: ItemRow) -> LineSummary:
    return {
        "product_name": item.product_name,
        "quantity": item.quantity,
        "unit_price": to_money(item.unit_price),
        "subtotal": to_money(item.unit_price * item.quantity),
    }
