"""The OpenAPI 3.1 document of the HTTP API, generated from the pydantic models in
`processor.api.schemas` so that the published contract cannot drift from the validation code.

`document()` builds it, `render()` is the canonical text served at `GET /openapi.json` and
checked in as `docs/openapi.json` (`make openapi` rewrites it; a test fails when they differ).
`python -m processor.api.openapi [PATH]` writes the file.

The document declares the API key only where the server enforces one (`api_key_required`):
a client generator or fuzzer that reads it then neither sends a key that nobody checks nor
expects a 401 that never comes. The checked-in copy is the deployed API's, which requires it.
"""

from __future__ import annotations

import json
import sys
from functools import lru_cache
from pathlib import Path
from typing import Any

from pydantic import BaseModel
from pydantic.json_schema import (
    GenerateJsonSchema,
    JsonSchemaMode,
    JsonSchemaValue,
    models_json_schema,
)
from pydantic_core import core_schema

from processor.api import schemas
from processor.domain.model import IDEMPOTENCY_KEY_PATTERN, Status

OPENAPI_VERSION = "3.1.0"
DOC_PATH = Path(__file__).resolve().parents[2] / "docs" / "openapi.json"
REF = "#/components/schemas/{model}"

# Pydantic keeps the bounds of validator-wrapped numbers under their Python names.
_BOUNDS = {"ge": "minimum", "le": "maximum", "gt": "exclusiveMinimum", "lt": "exclusiveMaximum"}


class _ApiJsonSchema(GenerateJsonSchema):
    """Decimals are JSON numbers on this API in both directions: `jsonutil` parses numbers to
    Decimal and prints Decimals as numbers, and string amounts are rejected. Pydantic's default
    (a string, or number-or-string) would describe a different API."""

    def decimal_schema(self, schema: core_schema.DecimalSchema) -> JsonSchemaValue:
        json_schema: JsonSchemaValue = {"type": "number"}
        for key, name in _BOUNDS.items():
            bound = schema.get(key)
            if bound is not None:
                json_schema[name] = _number(bound)
        return json_schema


def _number(value: Any) -> int | float:
    number = float(value)
    return int(number) if number.is_integer() else number


def _normalise(node: Any) -> Any:
    """Rewrite pydantic's leftovers into standard keywords, recursively.

    `decimal_places` becomes `multipleOf` (exact in JSON Schema, and what lets a generator
    or fuzzer send only amounts the API accepts) and a sentence in the description: some
    validators divide binary floats (0.29 / 0.01) and misjudge `multipleOf`, so people and
    those tools read the rule in words too.
    """
    if isinstance(node, list):
        return [_normalise(item) for item in node]
    if not isinstance(node, dict):
        return node
    out = {key: _normalise(value) for key, value in node.items()}
    if out.get("anyOf") == [{"type": "number"}, {"type": "string"}]:
        del out["anyOf"]
        out["type"] = "number"
    if out.get("type") == "number":
        for key, name in _BOUNDS.items():
            if key in out:
                out[name] = _number(out.pop(key))
    places = out.pop("decimal_places", None)
    if places is not None:
        out["multipleOf"] = 10.0**-places
        note = f"At most {places} decimal places."
        out["description"] = f"{out['description']} {note}" if "description" in out else note
    return out


_MODELS: list[tuple[type[BaseModel], JsonSchemaMode]] = [
    (schemas.CreateOrderRequest, "validation"),
    (schemas.RefundRequestBody, "validation"),
    (schemas.RefundOut, "serialization"),
    (schemas.ListOrdersQuery, "validation"),
    (schemas.CancelOrderRequest, "validation"),
    (schemas.CreatedOrder, "serialization"),
    (schemas.OrderDetail, "serialization"),
    (schemas.OrderPage, "serialization"),
    (schemas.ErrorResponse, "serialization"),
]


def _component_schemas() -> dict[str, Any]:
    _, top = models_json_schema(_MODELS, ref_template=REF, schema_generator=_ApiJsonSchema)
    defs: dict[str, Any] = _normalise(top["$defs"])
    return defs


def _query_parameters(query_schema: dict[str, Any]) -> list[dict[str, Any]]:
    """One `in: query` parameter per field of ListOrdersQuery (optional fields lose `null`);
    the field's description describes the parameter, as readers of the document look there."""
    parameters = []
    for name, prop in query_schema["properties"].items():
        prop = dict(prop)
        variants = prop.pop("anyOf", None)
        if variants is not None:
            concrete = [v for v in variants if v != {"type": "null"}]
            prop = {**prop, **concrete[0]} if len(concrete) == 1 else {**prop, "anyOf": concrete}
        if prop.get("default", 0) is None:
            del prop["default"]
        prop.pop("title", None)
        description = prop.pop("description")
        parameters.append(
            {
                "name": name,
                "in": "query",
                "required": False,
                "description": description,
                "schema": prop,
            }
        )
    return parameters


def _json(schema_name: str) -> dict[str, Any]:
    return {"application/json": {"schema": {"$ref": REF.format(model=schema_name)}}}


_ERRORS = {
    "400": (
        "BadRequest",
        "VALIDATION_ERROR (see `details`), INVALID_JSON, or INVALID_SIGNATURE (webhook).",
    ),
    "401": ("Unauthorized", "UNAUTHORIZED: `x-api-key` is missing or wrong (local server)."),
    "403": ("Forbidden", "UNAUTHORIZED: `x-api-key` is missing or wrong (API Gateway)."),
    "404": ("NotFound", "ORDER_NOT_FOUND."),
    "409": (
        "Conflict",
        "IDEMPOTENCY_KEY_REUSED, INVALID_ORDER_STATE or (refunds) REFUND_EXCEEDS_CAPTURED.",
    ),
    "413": (
        "PayloadTooLarge",
        "PAYLOAD_TOO_LARGE: the body exceeds MAX_BODY_BYTES (WEBHOOK_MAX_BODY_BYTES).",
    ),
    "415": ("UnsupportedMediaType", "UNSUPPORTED_MEDIA_TYPE: a Content-Type other than JSON."),
    "500": ("InternalError", "INTERNAL_ERROR: a bug; details are logged, never returned."),
    "503": (
        "ServiceUnavailable",
        "SERVICE_UNAVAILABLE: the database is unreachable; PAYMENT_PROVIDER_UNAVAILABLE: the"
        " payment provider did not answer (retry; the operation completes then);"
        " WEBHOOK_NOT_CONFIGURED: no webhook signing secret.",
    ),
}


_KEY_ERRORS = ("401", "403")
# AUTH=jwt: what 401 and 403 mean for a bearer token, and how 404 keeps other customers'
# orders unknown.
_BEARER_ERRORS = {
    "401": ("Unauthorized", "UNAUTHORIZED: the bearer token is missing, invalid or expired"
            " (`WWW-Authenticate: Bearer`)."),
    "403": ("Forbidden", "FORBIDDEN: a customer placing an order in another customer's name"
            " or without a verified email."),
    "404": ("NotFound", "ORDER_NOT_FOUND: unknown, or another customer's order."),
}
BEARER_SCHEME = {
    "type": "http",
    "scheme": "bearer",
    "bearerFormat": "JWT",
    "description": (
        "A token from the identity provider (Cognito, or the configured issuer; locally"
        " `python -m processor admin token --email you@example.com`). Customers see their own"
        " orders; a token of the admin group sees every order."
    ),
}


def _error_responses(api_key_required: bool, bearer: bool = False) -> dict[str, Any]:
    responses: dict[str, Any] = {}
    errors = {**_ERRORS, **_BEARER_ERRORS} if bearer else _ERRORS
    for code, (name, description) in errors.items():
        if api_key_required or bearer or code not in _KEY_ERRORS:
            responses[name] = {"description": description, "content": _json("ErrorResponse")}
    responses["ServiceUnavailable"]["headers"] = {
        "Retry-After": {
            "description": "Seconds to wait before retrying.",
            "required": True,
            "schema": {"type": "integer", "minimum": 0},
        }
    }
    return responses


def _responses(
    api_key_required: bool, success: tuple[str, str, str], *errors: str
) -> dict[str, Any]:
    status, schema_name, description = success
    out: dict[str, Any] = {status: {"description": description, "content": _json(schema_name)}}
    keyed = _KEY_ERRORS if api_key_required else ()
    # Chalice answers 415 on every route to a non-JSON Content-Type, even without a body.
    for code in sorted((*errors, *keyed, "415", "500", "503")):
        out[code] = {"$ref": f"#/components/responses/{_ERRORS[code][0]}"}
    return out


_ORDER_ID = {
    "name": "order_id",
    "in": "path",
    "required": True,
    "description": "The `order_id` that creating the order returned.",
    "schema": {"type": "string", "format": "uuid"},
}
# The created order's id feeds the operations on one order: generated clients and stateful
# fuzzers follow these links from a real order instead of guessing ids.
_ORDER_LINKS = {
    "GetOrder": {
        "operationId": "getOrder",
        "parameters": {"order_id": "$response.body#/order_id"},
        "description": "The order just created.",
    },
    "CancelOrder": {
        "operationId": "cancelOrder",
        "parameters": {"order_id": "$response.body#/order_id"},
        "description": "Cancel the order just created.",
    },
    "RefundOrder": {
        "operationId": "refundOrder",
        "parameters": {"order_id": "$response.body#/order_id"},
        "description": "Refund the order just created (once its payment is captured).",
    },
}
_TAGS = [
    {"name": "orders", "description": "Place, read, list and cancel orders."},
    {"name": "reference", "description": "This document and its interactive view; no key."},
    {"name": "webhooks", "description": "Events from the payment provider; signed, no key."},
]
_STRIPE_SIGNATURE = {
    "name": "Stripe-Signature",
    "in": "header",
    "required": True,
    "description": (
        "`t=<unix time>,v1=<hex HMAC-SHA256 of \"<t>.<raw body>\">` under the endpoint's signing"
        " secret; several `v1` entries allowed. Older than WEBHOOK_TOLERANCE_SECONDS (300):"
        " refused."
    ),
    "schema": {"type": "string"},
}
_WEBHOOK_RECEIPT = {
    "type": "object",
    "required": ["received", "duplicate", "event_id"],
    "properties": {
        "received": {"type": "boolean", "const": True},
        "duplicate": {"type": "boolean", "description": "The event id was processed before."},
        "event_id": {"type": "string"},
        "outcome": {
            "type": "string",
            "enum": ["applied", "unchanged", "stale", "ignored", "disagreement", "unknown_order"],
            "description": "What the event did to our records (absent for a duplicate).",
        },
    },
}
_IDEMPOTENCY_KEY = {
    "name": "Idempotency-Key",
    "in": "header",
    "required": False,
    "description": (
        "Makes retries safe: the same key with the same body replays the first 201 response"
        " (with `Idempotent-Replayed: true`); with a different body it is refused (409)."
        " Visible ASCII characters (spaces inside allowed); keys are kept 48 hours."
    ),
    "schema": {"type": "string", "pattern": IDEMPOTENCY_KEY_PATTERN},
}


@lru_cache(maxsize=4)
def document(api_key_required: bool = True, bearer: bool = False) -> dict[str, Any]:
    """The whole OpenAPI document (built once per process and variant; it only depends on the
    code), declaring the API key if `api_key_required`, or with `bearer` (AUTH=jwt) the
    bearer-token scheme, which /docs' Authorize dialog then asks for."""
    api_key_required = api_key_required and not bearer
    secured = api_key_required or bearer
    components = _component_schemas()
    query_schema = components.pop("ListOrdersQuery")
    created = _responses(
        secured,
        ("201", "CreatedOrder", "Accepted and queued for processing."),
        "400",
        "409",
        "413",
    )
    created["201"]["headers"] = {
        "Idempotent-Replayed": {
            "description": "`true` when this is the stored response of an earlier request.",
            "schema": {"type": "string", "enum": ["true"]},
        }
    }
    created["201"]["links"] = _ORDER_LINKS
    order = _responses(secured, ("200", "OrderDetail", "The order."), "400", "404")
    refunded = _responses(
        secured, ("201", "RefundOut", "The refund."), "400", "404", "409", "413"
    )
    refunded["201"]["headers"] = created["201"]["headers"]
    order["200"]["links"] = {"CancelOrder": _ORDER_LINKS["CancelOrder"]}
    public: dict[str, Any] = {"security": []} if secured else {}
    key_note = (
        " Every order operation needs the `x-api-key` header." if api_key_required else ""
    )
    if bearer:
        key_note = (
            " Every order operation needs `Authorization: Bearer <token>`; a customer reads,"
            " lists and cancels only their own orders (another's answers 404)."
        )
    out: dict[str, Any] = {
        "openapi": OPENAPI_VERSION,
        "info": {
            "title": "orderflow",
            "version": "1.0.0",
            "description": (
                "Event-driven order processing. Amounts are exact JSON numbers. Orders move"
                f" through {', '.join(s.value for s in Status)} (see the README).{key_note}"
            ),
            "contact": {"name": "orderflow maintainers"},
        },
        # Relative to this document's own URL, so it holds on every host and under API
        # Gateway's stage prefix (`/dev/openapi.json` serves `/dev/orders`).
        "servers": [{"url": ".", "description": "The server that serves this document."}],
        "tags": _TAGS,
        "paths": {
            "/orders": {
                "post": {
                    "operationId": "createOrder",
                    "tags": ["orders"],
                    "summary": "Place an order",
                    "description": (
                        "Stores the order as PENDING and queues it; the processor then takes"
                        " it through payment and fulfilment. Send an `Idempotency-Key` to retry"
                        " safely."
                    ),
                    "parameters": [_IDEMPOTENCY_KEY],
                    "requestBody": {"required": True, "content": _json("CreateOrderRequest")},
                    "responses": created,
                },
                "get": {
                    "operationId": "listOrders",
                    "tags": ["orders"],
                    "summary": "List orders, newest first",
                    "description": (
                        "Newest first, `order_id` breaking ties. Page with `cursor` (the"
                        " previous page's `next_cursor`), which stays fast at any depth."
                    ),
                    "parameters": _query_parameters(query_schema),
                    "responses": _responses(
                        secured, ("200", "OrderPage", "A page of orders."), "400"
                    ),
                },
            },
            "/orders/{order_id}": {
                "get": {
                    "operationId": "getOrder",
                    "tags": ["orders"],
                    "summary": "An order with its status history",
                    "description": "The order, its items and every status it had, newest first.",
                    "parameters": [_ORDER_ID],
                    "responses": order,
                },
            },
            "/orders/{order_id}/cancel": {
                "post": {
                    "operationId": "cancelOrder",
                    "tags": ["orders"],
                    "summary": "Cancel an order before its payment is captured",
                    "description": (
                        "Allowed while PENDING, while PROCESSING until the authorisation"
                        " starts, and in PAYMENT_CONFIRMED, where it voids the authorisation"
                        " (nothing is ever captured). Refused (409) once the capture has begun"
                        " or later: refund a captured order instead. Cancelling a cancelled"
                        " order is a harmless no-op. The body is optional; its `reason` is kept"
                        " in the history."
                    ),
                    "parameters": [_ORDER_ID],
                    "requestBody": {"required": False, "content": _json("CancelOrderRequest")},
                    "responses": _responses(
                        secured,
                        ("200", "OrderDetail", "The cancelled order."),
                        "400",
                        "404",
                        "409",
                    ),
                },
            },
            "/webhooks/stripe": {
                "post": {
                    "operationId": "receiveStripeWebhook",
                    "tags": ["webhooks"],
                    "summary": "Receive a Stripe event",
                    "description": (
                        "For Stripe only: register this URL (the stack output"
                        " `stripe_webhook_url`) in Stripe. The `Stripe-Signature` header"
                        " authenticates the sender; no API key. Each event id is processed"
                        " once; an event never moves an order backwards."
                    ),
                    **public,
                    "parameters": [_STRIPE_SIGNATURE],
                    "requestBody": {
                        "required": True,
                        "content": {"application/json": {"schema": {"type": "object"}}},
                    },
                    "responses": {
                        "200": {
                            "description": "Accepted (or already processed).",
                            "content": {"application/json": {"schema": _WEBHOOK_RECEIPT}},
                        },
                        **{
                            code: {"$ref": f"#/components/responses/{_ERRORS[code][0]}"}
                            for code in ("400", "413", "415", "500", "503")
                        },
                    },
                },
            },
            "/orders/{order_id}/refunds": {
                "post": {
                    "operationId": "refundOrder",
                    "tags": ["orders"],
                    "summary": "Refund part or all of a captured payment",
                    "description": (
                        "Allowed in FULFILLED and COMPLETED. No `amount` refunds everything"
                        " captured and not yet refunded; the refunded total never exceeds the"
                        " captured amount (409 REFUND_EXCEEDS_CAPTURED). When everything is"
                        " refunded the order becomes REFUNDED. Send an `Idempotency-Key` to"
                        " retry safely (a retry also finishes a refund the provider did not"
                        " answer)."
                    ),
                    "parameters": [_ORDER_ID, _IDEMPOTENCY_KEY],
                    "requestBody": {"required": True, "content": _json("RefundRequestBody")},
                    "responses": refunded,
                },
            },
            "/openapi.json": {
                "get": {
                    "operationId": "getOpenApi",
                    "tags": ["reference"],
                    "summary": "This document",
                    "description": "The OpenAPI 3.1 description of this API, for tools.",
                    **public,
                    "responses": {
                        "200": {
                            "description": "The OpenAPI document.",
                            "content": {"application/json": {"schema": {"type": "object"}}},
                        },
                        "415": {"$ref": "#/components/responses/UnsupportedMediaType"},
                    },
                },
            },
            "/docs": {
                "get": {
                    "operationId": "getDocs",
                    "tags": ["reference"],
                    "summary": "Interactive API reference",
                    "description": "Swagger UI for this document, to read and try the API.",
                    **public,
                    "responses": {
                        "200": {
                            "description": "A self-contained HTML page.",
                            "content": {"text/html": {"schema": {"type": "string"}}},
                        },
                        "415": {"$ref": "#/components/responses/UnsupportedMediaType"},
                    },
                },
            },
        },
        "components": {
            "schemas": components,
            "responses": _error_responses(api_key_required, bearer),
        },
    }
    if bearer:
        out["security"] = [{"BearerAuth": []}]
        out["components"]["securitySchemes"] = {"BearerAuth": BEARER_SCHEME}
    if api_key_required:
        out["security"] = [{"ApiKey": []}]
        out["components"]["securitySchemes"] = {
            "ApiKey": {
                "type": "apiKey",
                "in": "header",
                "name": "x-api-key",
                "description": "The API key of the deployment (or the local server's API_KEY).",
            }
        }
    return out


@lru_cache(maxsize=4)
def render(api_key_required: bool = True, bearer: bool = False) -> str:
    """The canonical text: what the API serves, and (with the key) `docs/openapi.json`."""
    return json.dumps(document(api_key_required, bearer), indent=2, ensure_ascii=False) + "\n"


def main(argv: list[str] | None = None) -> int:
    target = Path(argv[0]) if argv else DOC_PATH
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(render(), encoding="utf-8")
    print(f"wrote {target}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
