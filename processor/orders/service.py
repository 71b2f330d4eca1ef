"""Order use cases behind the API: create, get, list, cancel. The Chalice routes and the
operator CLI call these functions and nothing below them.

Each takes its dependencies (`deps`, see processor/bootstrap.py); the entrypoints pass none and
get the production wiring, unit tests pass fakes."""

from __future__ import annotations

import hashlib
import logging
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any
from uuid import UUID, uuid4

from db.repository import (
    IdempotencyClaim,
    IdempotencyRecord,
    ItemRow,
    ListQuery,
    NewOrder,
    OrderRow,
    Transition,
)
from processor import metrics
from processor.api.pagination import decode_cursor, encode_cursor
from processor.api.views import history_view, order_view, payment_view, refund_view
from processor.bootstrap import Dependencies, dependencies
from processor.domain.errors import (
    IdempotencyKeyReused,
    InvalidOrderState,
    OrderNotFound,
    ValidationFailed,
)
from processor.domain.model import REFUNDABLE_STATUSES, Status
from processor.jsonutil import dumps, loads
from processor.observability import correlation_id, emit_metric, log_context
from processor.payments import service as payments
from processor.payments.service import CANCEL_REASON

if TYPE_CHECKING:  # request models arrive validated; the services never load pydantic
    from processor.api.schemas import CreateOrderRequest, ListOrdersQuery

log = logging.getLogger(__name__)
CREATED_MESSAGE = "Order created successfully and queued for processing"


def _now() -> datetime:
    return datetime.now(UTC)


def parse_order_id(text: str) -> UUID:
    try:
        return UUID(text)
    except (ValueError, TypeError, AttributeError):
        raise ValidationFailed(
            "order_id must be a UUID",
            [{"field": "order_id", "message": "must be a UUID"}],
        ) from None


def create_order(
    request: CreateOrderRequest,
    idempotency_key: str | None = None,
    deps: Dependencies | None = None,
) -> tuple[dict[str, Any], bool]:
    """Accept an order; returns (response body, replayed).

    Order, items, history and outbox records commit together, then the queue message is sent
    at once; if SQS is down the sweeper sends it later, so an accepted order is never lost.
    """
    deps = deps or dependencies()
    if request.payment_method is None and deps.payments.requires_payment_method:
        raise ValidationFailed(
            f"payment_method is required with the {deps.payments.identifier} payment provider",
            [{"field": "payment_method", "message": "required"}],
        )
    order_id = uuid4()
    now = _now()
    items = [ItemRow(i.product_name, i.quantity, i.unit_price) for i in request.items]
    order = OrderRow(
        order_id=order_id,
        customer_email=request.customer_email,
        customer_name=request.customer_name,
        total_amount=request.total(),
        status=Status.PENDING.value,
        created_at=now,
        updated_at=now,
        currency=request.currency or deps.settings.default_currency,
        payment_method=request.payment_method,
    )
    view = order_view(order, items)
    del view["updated_at"]
    view["message"] = CREATED_MESSAGE
    claim = None
    if idempotency_key is not None:
        claim = IdempotencyClaim(idempotency_key, _request_hash(request), 201, dumps(view))
    message = {"order_id": str(order_id), "correlation_id": correlation_id()}
    new = NewOrder(order, items, message, claim)
    with deps.uow(single_statement=True) as uow:
        outbox_id = uow.orders.add(new)
        if outbox_id is None:
            assert claim is not None
            return _replay(uow.orders.idempotency_record(claim.key), claim), True
    with log_context(order_id=str(order_id)):
        log.info("order created", extra={"total_amount": str(order.total_amount)})
    emit_metric(metrics.ORDERS_CREATED)
    deps.publisher.publish_new_order(new.queue_record(outbox_id))
    return view, False


def _replay(earlier: IdempotencyRecord | None, claim: IdempotencyClaim) -> dict[str, Any]:
    """The original response for a reused key, or 409 if the request differs."""
    if earlier is None:  # purged between the claim and this read; treat as in conflict
        raise IdempotencyKeyReused("this Idempotency-Key expired while in use; retry")
    if earlier.request_hash != claim.request_hash:
        raise IdempotencyKeyReused("this Idempotency-Key was used with a different request body")
    response: dict[str, Any] = loads(earlier.response_body)
    return response


def _request_hash(request: CreateOrderRequest) -> str:
    return hashlib.sha256(dumps(request.model_dump(mode="python")).encode()).hexdigest()


def get_order(order_id: UUID, deps: Dependencies | None = None) -> dict[str, Any]:
    deps = deps or dependencies()
    with deps.uow() as uow:
        order = uow.orders.get(order_id)
        if order is None:
            raise OrderNotFound(f"order {order_id} does not exist")
        view = order_view(order, uow.orders.items_for([order_id])[order_id])
        view["status_history"] = history_view(uow.orders.history(order_id))
        view["payment"] = payment_view(uow.payments.get(order_id))
        view["refunds"] = [refund_view(r) for r in uow.payments.refunds(order_id)]
    return view


def list_orders(query: ListOrdersQuery, deps: Dependencies | None = None) -> dict[str, Any]:
    deps = deps or dependencies()
    page_query = ListQuery(
        limit=query.limit + 1,
        offset=query.offset,
        after=decode_cursor(query.cursor) if query.cursor else None,
        status=query.status.value if query.status else None,
        customer_email=query.customer_email,
    )
    with deps.uow() as uow:
        rows = uow.orders.list(page_query)
        page, has_more = rows[: query.limit], len(rows) > query.limit
        items = uow.orders.items_for([row.order_id for row in page]) if page else {}
    orders = [order_view(row, items[row.order_id]) for row in page]
    last = page[-1] if page else None
    return {
        "orders": orders,
        "count": len(orders),
        "limit": query.limit,
        "offset": query.offset,
        "has_more": has_more,
        "next_cursor": encode_cursor(last.created_at, last.order_id) if has_more and last else None,
    }


def cancel_order(order_id: UUID, deps: Dependencies | None = None) -> dict[str, Any]:
    """Cancel before authorisation, or void the authorisation in PAYMENT_CONFIRMED (never
    once the capture has begun); cancelling a cancelled order is a harmless no-op."""
    deps = deps or dependencies()
    with deps.uow() as uow:
        note_id = uow.orders.transition(
            Transition(
                order_id,
                [Status.PENDING.value, Status.PROCESSING.value],
                Status.CANCELLED.value,
                _now(),
                reason=CANCEL_REASON,
                require_no_payment=True,
            )
        )
        current = uow.orders.get_status(order_id)
        uow.commit()
    if current is None:
        raise OrderNotFound(f"order {order_id} does not exist")
    if note_id is not None:
        # Every unsent notification of the order, oldest first: create_order leaves the PENDING
        # email to the processor, and it must not arrive after the cancellation (or never).
        deps.publisher.publish_notifications(order_id)
    elif current == Status.PAYMENT_CONFIRMED:
        if not payments.void_and_cancel(order_id, deps):  # the capture claimed it first
            raise InvalidOrderState(
                _not_cancellable(current), [{"field": "status", "message": current}]
            )
    elif current != Status.CANCELLED:
        raise InvalidOrderState(
            _not_cancellable(current), [{"field": "status", "message": current}]
        )
    return get_order(order_id, deps)


def _not_cancellable(status: str) -> str:
    if Status(status) in REFUNDABLE_STATUSES:
        return f"order is {status}: its payment was captured; use POST /orders/{{order_id}}/refunds"
    if status == Status.PAYMENT_CONFIRMED:
        return "order is PAYMENT_CONFIRMED and its payment is being captured"
    return f"order is {status} and can no longer be cancelled"
