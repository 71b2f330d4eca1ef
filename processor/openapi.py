"""The OpenAPI 3.1 document of the HTTP API, generated from the pydantic models in
`processor.schemas` so that the published contract cannot drift from the validation code.

`document()` builds it, `render()` is the canonical text served at `GET /openapi.json` and
checked in as `docs/openapi.json` (`make openapi` rewrites it; a test fails when they differ).
`python -m processor.openapi [PATH]` writes the file.
"""

from __future__ import annotations

import json
import sys
from functools import lru_cache
from pathlib import Path
from typing import Any

from pydantic import BaseModel
from pydantic.json_schema import GenerateJsonSchema, JsonSchemaValue, models_json_schema
from pydantic_core import core_schema

from processor import schemas
from processor.domain import Status

OPENAPI_VERSION = "3.1.0"
DOC_PATH = Path(__file__).resolve().parent.parent / "docs" / "openapi.json"
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
            if schema.get(key) is not None:
                json_schema[name] = _number(schema[key])  # type: ignore[literal-required]
        return json_schema


def _number(value: Any) -> int | float:
    number = float(value)
    return int(number) if number.is_integer() else number


def _normalise(node: Any) -> Any:
    """Rewrite pydantic's leftovers into standard keywords, recursively.

    `decimal_places` has no exact JSON Schema form (`multipleOf: 0.01` misjudges binary
    floats such as 0.29 in common validators), so it becomes part of the description.
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
        note = f"At most {places} decimal places."
        out["description"] = f"{out['description']} {note}" if "description" in out else note
    return out


_MODELS: list[tuple[type[BaseModel], str]] = [
    (schemas.CreateOrderRequest, "validation"),
    (schemas.ListOrdersQuery, "validation"),
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
    """One `in: query` parameter per field of ListOrdersQuery (optional fields lose `null`)."""
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
        parameters.append({"name": name, "in": "query", "required": False, "schema": prop})
    return parameters


def _json(schema_name: str) -> dict[str, Any]:
    return {"application/json": {"schema": {"$ref": REF.format(model=schema_name)}}}


_ERRORS = {
    "400": ("BadRequest", "VALIDATION_ERROR (see `details`) or INVALID_JSON."),
    "401": ("Unauthorized", "UNAUTHORIZED: `x-api-key` is missing or wrong."),
    "404": ("NotFound", "ORDER_NOT_FOUND."),
    "409": ("Conflict", "IDEMPOTENCY_KEY_REUSED or INVALID_ORDER_STATE."),
    "413": ("PayloadTooLarge", "PAYLOAD_TOO_LARGE: the body exceeds MAX_BODY_BYTES."),
    "415": ("UnsupportedMediaType", "UNSUPPORTED_MEDIA_TYPE: a Content-Type other than JSON."),
    "500": ("InternalError", "INTERNAL_ERROR: a bug; details are logged, never returned."),
    "503": ("ServiceUnavailable", "SERVICE_UNAVAILABLE: the database is unreachable."),
}


def _error_responses() -> dict[str, Any]:
    responses: dict[str, Any] = {}
    for name, description in _ERRORS.values():
        responses[name] = {"description": description, "content": _json("ErrorResponse")}
    responses["ServiceUnavailable"]["headers"] = {
        "Retry-After": {
            "description": "Seconds to wait before retrying.",
            "required": True,
            "schema": {"type": "integer", "minimum": 0},
        }
    }
    return responses


def _responses(success: tuple[str, str, str], *errors: str) -> dict[str, Any]:
    status, schema_name, description = success
    out: dict[str, Any] = {status: {"description": description, "content": _json(schema_name)}}
    # Chalice answers 415 on every route to a non-JSON Content-Type, even without a body.
    for code in (*errors, "415", "500", "503"):
        out[code] = {"$ref": f"#/components/responses/{_ERRORS[code][0]}"}
    return out


_ORDER_ID = {
    "name": "order_id",
    "in": "path",
    "required": True,
    "schema": {"type": "string", "format": "uuid"},
}
_IDEMPOTENCY_KEY = {
    "name": "Idempotency-Key",
    "in": "header",
    "required": False,
    "description": (
        "Makes retries safe: the same key with the same body replays the first 201 response"
        " (with `Idempotent-Replayed: true`); with a different body it is refused (409)."
        " Printable characters; keys are kept 48 hours."
    ),
    "schema": {"type": "string", "minLength": 1, "maxLength": 255},
}


@lru_cache(maxsize=1)
def document() -> dict[str, Any]:
    """The whole OpenAPI document (built once per process; it only depends on the code)."""
    components = _component_schemas()
    query_schema = components.pop("ListOrdersQuery")
    created = _responses(
        ("201", "CreatedOrder", "Accepted and queued for processing."),
        "400",
        "401",
        "409",
        "413",
    )
    created["201"]["headers"] = {
        "Idempotent-Replayed": {
            "description": "`true` when this is the stored response of an earlier request.",
            "schema": {"type": "string", "enum": ["true"]},
        }
    }
    return {
        "openapi": OPENAPI_VERSION,
        "info": {
            "title": "orderflow",
            "version": "1.0.0",
            "description": (
                "Event-driven order processing. Amounts are exact JSON numbers. Orders move"
                f" through {', '.join(s.value for s in Status)} (see the README)."
            ),
        },
        "security": [{"ApiKey": []}],
        "paths": {
            "/orders": {
                "post": {
                    "operationId": "createOrder",
                    "summary": "Place an order",
                    "parameters": [_IDEMPOTENCY_KEY],
                    "requestBody": {"required": True, "content": _json("CreateOrderRequest")},
                    "responses": created,
                },
                "get": {
                    "operationId": "listOrders",
                    "summary": "List orders, newest first",
                    "description": "Use `cursor` (from `next_cursor`) or `offset`, not both.",
                    "parameters": _query_parameters(query_schema),
                    "responses": _responses(
                        ("200", "OrderPage", "A page of orders."), "400", "401"
                    ),
                },
            },
            "/orders/{order_id}": {
                "get": {
                    "operationId": "getOrder",
                    "summary": "An order with its status history",
                    "parameters": [_ORDER_ID],
                    "responses": _responses(
                        ("200", "OrderDetail", "The order."), "400", "401", "404"
                    ),
                },
            },
            "/orders/{order_id}/cancel": {
                "post": {
                    "operationId": "cancelOrder",
                    "summary": "Cancel an order before its payment starts",
                    "description": "Cancelling a cancelled order is a harmless no-op.",
                    "parameters": [_ORDER_ID],
                    "responses": _responses(
                        ("200", "OrderDetail", "The cancelled order."),
                        "400",
                        "401",
                        "404",
                        "409",
                    ),
                },
            },
            "/openapi.json": {
                "get": {
                    "operationId": "getOpenApi",
                    "summary": "This document",
                    "security": [],
                    "responses": {
                        "200": {
                            "description": "The OpenAPI document.",
                            "content": {"application/json": {"schema": {"type": "object"}}},
                        },
                        "415": {"$ref": "#/components/responses/UnsupportedMediaType"},
                    },
                },
            },
        },
        "components": {
            "schemas": components,
            "responses": _error_responses(),
            "securitySchemes": {
                "ApiKey": {
                    "type": "apiKey",
                    "in": "header",
                    "name": "x-api-key",
                    "description": "Required when the server runs with API_KEY set.",
                }
            },
        },
    }


@lru_cache(maxsize=1)
def render() -> str:
    """The canonical text: what the API serves and what `docs/openapi.json` contains."""
    return json.dumps(document(), indent=2, ensure_ascii=False) + "\n"


def main(argv: list[str] | None = None) -> int:
    target = Path(argv[0]) if argv else DOC_PATH
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(render(), encoding="utf-8")
    print(f"wrote {target}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
