"""Shape stored rows into the API's response dictionaries (one place for the JSON layout)."""

from __future__ import annotations

from typing import Any

from db.repository import HistoryRow, ItemRow, OrderRow, PaymentRow, RefundRow
from processor.domain.model import to_money
from processor.domain.money import from_minor


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
        "currency": order.currency,
        "status": order.status,
        "items": [item_view(item) for item in items],
        "created_at": order.created_at,
        "updated_at": order.updated_at,
    }


# What each saved step means to the customer, in the seed contract's words. Declines and
# cancels carry their stored reason after the colon, so the history alone explains the outcome.
HISTORY_MESSAGES = {
    "PENDING": "Order created",
    "PROCESSING": "Order is being processed",
    "PAYMENT_CONFIRMED": "Payment processed successfully",
    "PAYMENT_FAILED": "Payment declined",
    "FULFILLED": "Order has been fulfilled",
    "COMPLETED": "Order completed",
    "CANCELLED": "Order cancelled",
    "REFUNDED": "Order refunded",
}


def history_message(status: str, reason: str | None) -> str:
    message = HISTORY_MESSAGES.get(status, f"Order is {status}")
    return f"{message}: {reason}" if reason else message


def history_view(history: list[HistoryRow]) -> list[dict[str, Any]]:
    """The seed's entry shape: `{"status", "message", "created_at"}` (newest first)."""
    return [
        {
            "status": row.status,
            "message": history_message(row.status, row.reason),
            "created_at": row.changed_at,
        }
        for row in history
    ]


def payment_view(payment: PaymentRow | None) -> dict[str, Any] | None:
    """Amounts as exact decimals of the order's currency (stored in minor units)."""
    if payment is None:
        return None
    currency = payment.currency
    return {
        "provider": payment.provider,
        "provider_reference": payment.provider_ref,
        "status": payment.status,
        "currency": currency,
        "amount_authorized": from_minor(payment.authorized_minor, currency),
        "amount_captured": from_minor(payment.captured_minor, currency),
        "amount_refunded": from_minor(payment.refunded_minor, currency),
    }


def refund_view(refund: RefundRow) -> dict[str, Any]:
    return {
        "refund_id": str(refund.refund_id),
        "order_id": str(refund.order_id),
        "amount": from_minor(refund.amount_minor, refund.currency),
        "currency": refund.currency,
        "reason": refund.reason,
        "status": refund.status,
        "provider_reference": refund.provider_ref,
        "created_at": refund.created_at,
    }
