"""orderflow HTTP API and event handlers. Routes parse, call one service, and respond.

Every Lambda function of the app imports this module, so it imports only what all of them
need; each handler imports its own modules on first call. The SQS and schedule functions then
never load pydantic, and `GET /orders/{id}` never builds the request models (see BENCHMARKS.md,
cold start).
"""

from __future__ import annotations

import os
from typing import Any

from chalice import Chalice, Rate, Response
from chalice.app import AuthRequest, AuthResponse, SQSEvent

from chalicelib.http import (
    api_view,
    correlation_id_for,
    current_request,
    idempotency_key,
    json_response,
    mask_local_access_log,
    normalise_chalice_error,
    parse_body,
    validate,
)
from processor.config import auth_mode
from processor.observability import configure_logging, log_context

configure_logging()
mask_local_access_log()
app = Chalice(app_name="orderflow")


@app.authorizer(ttl_seconds=300)
def jwt_auth(auth_request: AuthRequest) -> AuthResponse:
    """AUTH=jwt: verifies the bearer token (chalicelib/auth.py) before an order route runs,
    as API Gateway's Lambda authorizer in the cloud and in-process locally. The stack sets the
    cache TTL; the verifier and its JWT libraries load only here."""
    from chalicelib.auth import authorize

    return authorize(auth_request)


# Order routes go through the authorizer in `jwt` mode only; `make package` always builds
# with it, and the stack keeps or strips it per its `auth` setting (orderflow_infra.packaging).
ORDER_AUTHORIZER = jwt_auth if auth_mode() == "jwt" else None


@app.middleware("http")
def json_errors(event: Any, get_response: Any) -> Response:
    """Every response: our JSON error shape, and the correlation id that follows the order."""
    correlation = correlation_id_for(event)
    with log_context(correlation_id=correlation):
        response = normalise_chalice_error(get_response(event))
    response.headers["X-Correlation-Id"] = correlation
    return response


@app.route("/orders", methods=["POST"], authorizer=ORDER_AUTHORIZER)
@api_view
def create_order() -> Response:
    from chalicelib.auth import caller
    from processor.api.schemas import CreateOrderRequest
    from processor.orders import service as order_service

    request = current_request(app)
    customer = caller(request)
    order = parse_body(request, CreateOrderRequest)
    body, replayed = order_service.create_order(
        order, idempotency_key(request), customer=customer
    )
    return json_response(body, 201, {"Idempotent-Replayed": "true"} if replayed else None)


@app.route("/orders", methods=["GET"], authorizer=ORDER_AUTHORIZER)
@api_view
def list_orders() -> Response:
    from chalicelib.auth import caller
    from processor.api.schemas import ListOrdersQuery
    from processor.orders import service as order_service

    request = current_request(app)
    customer = caller(request)
    query = validate(ListOrdersQuery, dict(request.query_params or {}))
    return json_response(order_service.list_orders(query, customer=customer))


@app.route("/orders/{order_id}", methods=["GET"], authorizer=ORDER_AUTHORIZER)
@api_view
def get_order(order_id: str) -> Response:
    from chalicelib.auth import caller
    from processor.orders import service as order_service

    customer = caller(current_request(app))
    order = order_service.parse_order_id(order_id)
    return json_response(order_service.get_order(order, customer=customer))


@app.route("/orders/{order_id}/cancel", methods=["POST"], authorizer=ORDER_AUTHORIZER)
@api_view
def cancel_order(order_id: str) -> Response:
    from chalicelib.auth import caller
    from processor.api.schemas import CancelOrderRequest
    from processor.orders import service as order_service

    request = current_request(app)
    customer = caller(request)
    order = order_service.parse_order_id(order_id)
    body = parse_body(request, CancelOrderRequest) if request.raw_body else CancelOrderRequest()
    return json_response(
        order_service.cancel_order(order, reason=body.reason, customer=customer)
    )


@app.route("/webhooks/stripe", methods=["POST"])
@api_view
def stripe_webhook() -> Response:
    """Public: Stripe holds no API key. The `Stripe-Signature` header, checked against the
    raw body before anything is parsed or stored, is what authenticates the caller."""
    from processor.webhooks.service import receive

    request = current_request(app)
    raw = request.raw_body or b""
    body = raw.encode() if isinstance(raw, str) else raw
    return json_response(receive(body, request.headers.get("stripe-signature")))


@app.route("/orders/{order_id}/refunds", methods=["POST"], authorizer=ORDER_AUTHORIZER)
@api_view
def refund_order(order_id: str) -> Response:
    from chalicelib.auth import caller
    from processor.api.schemas import RefundRequestBody
    from processor.orders import service as order_service
    from processor.payments import service as payment_service

    request = current_request(app)
    customer = caller(request)
    body = parse_body(request, RefundRequestBody)
    refund, replayed = payment_service.create_refund(
        order_service.parse_order_id(order_id),
        payment_service.RefundRequest(body.amount, body.reason),
        idempotency_key(request),
        customer=customer,
    )
    return json_response(refund, 201, {"Idempotent-Replayed": "true"} if replayed else None)


@app.route("/openapi.json", methods=["GET"])
@api_view
def openapi_document() -> Response:
    """The contract, generated from the pydantic models; public, like any API reference.
    It declares the API key exactly when this deployment requires one, or in `jwt` mode the
    bearer scheme. Imported on first use
    so that cold starts of the other routes do not pay for it."""
    from processor.api.openapi import render
    from processor.config import settings

    bearer = auth_mode() == "jwt"
    return Response(
        body=render(settings().api_key_required, bearer),
        headers={"Content-Type": "application/json"},
    )


@app.route("/docs", methods=["GET"])
@api_view
def api_reference() -> Response:
    """Swagger UI over /openapi.json for people (FastAPI users expect it here); public too."""
    from chalicelib.docs import page

    return Response(
        body=page(),
        headers={"Content-Type": "text/html; charset=utf-8", "Cache-Control": "max-age=300"},
    )


@app.on_sqs_message(
    queue=os.environ.get("ORDER_QUEUE_NAME", "orderflow-orders"),
    batch_size=int(os.environ.get("SQS_BATCH_SIZE", "10")),
)
def process_orders(event: SQSEvent) -> dict[str, Any]:
    from processor.entrypoints import consumer

    return consumer.lambda_batch_response([record.to_dict() for record in event])


@app.schedule(Rate(1, unit=Rate.MINUTES))
def sweep_outbox(event: Any) -> dict[str, int]:
    from processor.outbox import relay as outbox

    result = outbox.sweep()
    return {"sent": result.sent, "failed": result.failed}


@app.schedule(Rate(5, unit=Rate.MINUTES))
def reconcile(event: Any) -> dict[str, Any]:
    """The reconciler (`admin reconcile`, same code). The stack's own schedule rule, from its
    `reconcile_interval_minutes` setting, invokes it; the rate here only names it a
    scheduled handler for `chalice package`."""
    from processor.reconciliation import reconciler

    return reconciler.run_scheduled()


@app.lambda_function(name="migrate")
def migrate(event: Any, context: Any) -> dict[str, Any]:
    """Invoked by `pulumi up`; waits for the database within this invocation's time left."""
    from db.migrate import migrate_when_reachable

    return {
        "applied": migrate_when_reachable(lambda: context.get_remaining_time_in_millis() / 1000)
    }
