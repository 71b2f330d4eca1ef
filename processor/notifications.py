"""Customer email (SES) and operator events (SNS) for a saved status change."""

from __future__ import annotations

import json
from typing import Any

from processor.aws import client
from processor.config import Settings

_SUBJECTS = {
    "PENDING": "We received your order",
    "PROCESSING": "Your order is being processed",
    "PAYMENT_CONFIRMED": "Payment confirmed for your order",
    "PAYMENT_FAILED": "Payment failed for your order",
    "FULFILLED": "Your order has shipped",
    "COMPLETED": "Your order is complete",
    "CANCELLED": "Your order was cancelled",
}


def render_email(order: dict[str, Any], status: str, reason: str | None) -> tuple[str, str]:
    """Subject and plain-text body describing the order at `status`."""
    short_id = str(order["order_id"])[:8]
    lines = [
        f"Hello {order['customer_name']},",
        "",
        f"Order {order['order_id']} is now {status.replace('_', ' ').lower()}.",
    ]
    if reason:
        lines.append(f"Reason: {reason}")
    lines += ["", "Items:"]
    for item in order["items"]:
        lines.append(
            f"  {item['quantity']} x {item['product_name']} @ {item['unit_price']}"
            f" = {item['subtotal']}"
        )
    lines += [f"Total: {order['total_amount']}", "", "Thank you for your order."]
    return f"{_SUBJECTS.get(status, 'Order update')} ({short_id})", "\n".join(lines)


def notify(settings: Settings, order: dict[str, Any], status: str, reason: str | None) -> None:
    """Publish the operator event, then email the customer.

    One outbox record covers both and a failure resends both, so the side that may repeat goes
    first: an SNS error must not make the customer get the same email again (an SES error
    repeats an event, which subscribers can drop by order_id and status).
    """
    subject, text = render_email(order, status, reason)
    if settings.topic_arn:
        event = {
            "order_id": str(order["order_id"]),
            "status": status,
            "reason": reason,
            "total_amount": str(order["total_amount"]),
        }
        client("sns").publish(
            TopicArn=settings.topic_arn,
            Subject=subject[:100],
            Message=json.dumps(event),
            MessageAttributes={"status": {"DataType": "String", "StringValue": status}},
        )
    client("ses").send_email(
        Source=settings.sender_email,
        Destination={"ToAddresses": [order["customer_email"]]},
        Message={"Subject": {"Data": subject}, "Body": {"Text": {"Data": text}}},
    )
