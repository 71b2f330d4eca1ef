"""Customer email (SES) and operator events (SNS, batched) for saved status changes."""

from __future__ import annotations

import json
from dataclasses import dataclass
from decimal import Decimal
from typing import Any, TypedDict

from processor.adapters.aws import client
from processor.config import Settings
from processor.observability import external_error

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


@dataclass(frozen=True)
class Refusal:
    """Why a delivery failed, scrubbed of addresses. `permanent`: trying again cannot help
    (SES refused the message itself or an address in it). `unreachable`: no answer at all
    (connection refused or reset, timeout), an outage rather than anything about the message;
    otherwise the service answered with a transient error (throttling, a 5xx)."""

    error: str
    permanent: bool = False
    unreachable: bool = False


# SES answers these for the message itself: the sender or, in the SES sandbox, a recipient is
# not verified, or an address is malformed. The same call fails the same way every time.
PERMANENT_SES_CODES = frozenset(
    {"MessageRejected", "MailFromDomainNotVerifiedException", "InvalidParameterValue"}
)


def publish_events(settings: Settings, notes: list[Note]) -> dict[int, Refusal | None]:
    """Publish up to ten operator events in one SNS call: record id -> None when SNS accepted
    the event, else why not (a call that failed as a whole fails each of its events)."""
    from botocore.exceptions import BotoCoreError, ClientError

    if len(notes) > 10:
        raise ValueError("SNS publishes at most 10 entries per batch")
    if not settings.topic_arn or not notes:
        return {note.record_id: None for note in notes}
    try:
        response = client("sns").publish_batch(
            TopicArn=settings.topic_arn, PublishBatchRequestEntries=[_event_entry(n) for n in notes]
        )
    except ClientError as error:
        refusal = Refusal(external_error("sns", error))
        return {note.record_id: refusal for note in notes}
    except BotoCoreError as error:
        refusal = Refusal(external_error("sns", error), unreachable=True)
        return {note.record_id: refusal for note in notes}
    outcome: dict[int, Refusal | None] = {
        int(ok["Id"]): None for ok in response.get("Successful", [])
    }
    for bad in response.get("Failed", []):
        detail = f"{bad.get('Code')} {bad.get('Message')}"
        outcome[int(bad["Id"])] = Refusal(external_error("sns", detail))
    return outcome


def send_email(settings: Settings, note: Note) -> Refusal | None:
    """Email the customer about `note` (None when SES accepted it)."""
    from botocore.exceptions import BotoCoreError, ClientError

    subject, text = render_email(note.order, note.status, note.reason)
    try:
        client("ses").send_email(
            Source=settings.sender_email,
            Destination={"ToAddresses": [note.order["customer_email"]]},
            Message={"Subject": {"Data": subject}, "Body": {"Text": {"Data": text}}},
        )
    except ClientError as error:
        code = error.response.get("Error", {}).get("Code", "")
        return Refusal(external_error("ses", error), permanent=code in PERMANENT_SES_CODES)
    except BotoCoreError as error:
        return Refusal(external_error("ses", error), unreachable=True)
    return None


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
