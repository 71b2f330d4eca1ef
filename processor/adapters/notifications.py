"""Customer email (SES) and operator events (SNS, batched) for saved status changes."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from decimal import Decimal
from typing import Any, TypedDict

from processor.adapters.aws import client
from processor.config import Settings

_SUBJECTS = {
    "PENDING": "We received your order",
    "PROCESSING": "Your order is being processed",
    "PAYMENT_CONFIRMED": "Payment confirmed for your order",
    "PAYMENT_FAILED": "Payment failed for your order",
    "FULFILLED": "Your order has shipped",
    "COMPLETED": "Your order is complete",
    "CANCELLED": "Your order was cancelled",
    "REFUNDED": "Your order was refunded",
}


class LineSummary(TypedDict):
    product_name: str
    quantity: int
    unit_price: Decimal
    subtotal: Decimal


class OrderSummary(TypedDict):
    """What an email and an event say about an order (processor.outbox.views builds it): its
    own shape, so the API's response layout can change without changing what customers and
    subscribers receive."""

    order_id: str
    customer_email: str
    customer_name: str
    total_amount: Decimal
    items: list[LineSummary]


def render_email(order: OrderSummary, status: str, reason: str | None) -> tuple[str, str]:
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
    total = f"Total: {order['total_amount']} {str(order.get('currency', '')).upper()}"
    lines += [total.rstrip(), "", "Thank you for your order."]
    return f"{_SUBJECTS.get(status, 'Order update')} ({short_id})", "\n".join(lines)


@dataclass(frozen=True)
class Note:
    """One saved status change to announce: its outbox record id and the order's summary."""

    record_id: int
    order: OrderSummary
    status: str
    reason: str | None


def notify_batch(settings: Settings, notes: list[Note]) -> Iterator[tuple[int, str | None]]:
    """Publish up to ten operator events in one SNS call, then email each customer whose
    status is in CUSTOMER_EMAIL_STATUSES; yields (record id, error or None).

    One outbox record covers both and a failure resends both, so the side that may repeat goes
    first: an SNS error must not make the customer get the same email again (an SES error
    repeats an event, which subscribers can drop by order_id and status). A record whose event
    SNS refused gets no email this round.
    """
    from botocore.exceptions import BotoCoreError, ClientError

    if len(notes) > 10:
        raise ValueError("SNS publishes at most 10 entries per batch")
    published = {note.record_id for note in notes}
    if settings.topic_arn and notes:
        entries = [_event_entry(note) for note in notes]
        try:
            response = client("sns").publish_batch(
                TopicArn=settings.topic_arn, PublishBatchRequestEntries=entries
            )
        except (BotoCoreError, ClientError) as error:
            for note in notes:
                yield note.record_id, f"notify: {error}"
            return
        published = {int(ok["Id"]) for ok in response.get("Successful", [])}
        for bad in response.get("Failed", []):
            yield int(bad["Id"]), f"notify: sns {bad.get('Code')} {bad.get('Message')}"
    for note in notes:
        if note.record_id not in published:
            continue
        if note.status in settings.customer_email_statuses:
            subject, text = render_email(note.order, note.status, note.reason)
            try:
                client("ses").send_email(
                    Source=settings.sender_email,
                    Destination={"ToAddresses": [note.order["customer_email"]]},
                    Message={"Subject": {"Data": subject}, "Body": {"Text": {"Data": text}}},
                )
            except (BotoCoreError, ClientError) as error:
                yield note.record_id, f"notify: {error}"
                continue
        yield note.record_id, None


def _event_entry(note: Note) -> dict[str, Any]:
    subject, _ = render_email(note.order, note.status, note.reason)
    event = {
        "order_id": str(note.order["order_id"]),
        "status": note.status,
        "reason": note.reason,
        "total_amount": str(note.order["total_amount"]),
    }
    return {
        "Id": str(note.record_id),
        "Subject": subject[:100],
        "Message": json.dumps(event),
        "MessageAttributes": {"status": {"DataType": "String", "StringValue": note.status}},
    }
