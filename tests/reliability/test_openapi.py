"""The published contract: generated from the pydantic models, served without a key, checked in
as docs/openapi.json, and covering exactly the routes the app has."""

from __future__ import annotations

import json
from decimal import Decimal
from typing import Any

from jsonschema import Draft202012Validator

from processor.api.openapi import DOC_PATH, document, render
from processor.api.schemas import MAX_UNIT_PRICE
from tests.reliability.chaos.client import http_call


def test_checked_in_document_is_what_the_code_generates():
    assert DOC_PATH.read_text(encoding="utf-8") == render(), (
        "docs/openapi.json is stale: run `make openapi`"
    )


def test_document_is_valid_openapi_3_1():
    from schemathesis.specs.openapi.definitions import OPENAPI_31

    Draft202012Validator(OPENAPI_31).validate(json.loads(render()))
    for schema in document()["components"]["schemas"].values():
        Draft202012Validator.check_schema(schema)


def test_jwt_mode_document_is_valid_and_asks_for_a_bearer_token_on_order_routes_only():
    from schemathesis.specs.openapi.definitions import OPENAPI_31

    bearer = json.loads(render(True, bearer=True))
    Draft202012Validator(OPENAPI_31).validate(bearer)
    assert bearer["components"]["securitySchemes"] == {
        "BearerAuth": {**bearer["components"]["securitySchemes"]["BearerAuth"],
                       "type": "http", "scheme": "bearer", "bearerFormat": "JWT"}
    }
    assert bearer["security"] == [{"BearerAuth": []}]
    assert "x-api-key" not in json.dumps(bearer)
    for path in ("/openapi.json", "/docs"):
        assert bearer["paths"][path]["get"]["security"] == []
    for path, method in (("/orders", "post"), ("/orders", "get"),
                         ("/orders/{order_id}", "get"), ("/orders/{order_id}/cancel", "post")):
        assert "401" in bearer["paths"][path][method]["responses"], (path, method)


def test_every_route_of_the_app_is_documented_and_nothing_else():
    from app import app

    routes = {(path, method.lower()) for path, entry in app.routes.items() for method in entry}
    documented = {(path, method) for path, ops in document()["paths"].items() for method in ops}
    assert routes == documented


def test_bounds_in_the_document_come_from_the_models():
    schemas = document()["components"]["schemas"]
    price = schemas["OrderItemIn"]["properties"]["unit_price"]
    assert price["type"] == "number"
    assert Decimal(str(price["maximum"])) == MAX_UNIT_PRICE
    assert price["minimum"] == 0
    assert "2 decimal places" in price["description"]
    assert schemas["CreateOrderRequest"]["properties"]["items"]["maxItems"] == 100
    assert schemas["CreateOrderRequest"]["properties"]["customer_email"]["format"] == "email"
    assert schemas["CreatedOrder"]["properties"]["total_amount"] == {
        "title": "Total Amount",
        "type": "number",
    }
    query = {p["name"]: p["schema"] for p in document()["paths"]["/orders"]["get"]["parameters"]}
    assert query["limit"] == {"default": 50, "maximum": 100, "minimum": 1, "type": "integer"}
    assert query["status"] == {"$ref": "#/components/schemas/Status"}


def test_every_error_response_uses_the_error_schema_and_503_promises_retry_after():
    responses = document()["components"]["responses"]
    for response in responses.values():
        schema = response["content"]["application/json"]["schema"]
        assert schema == {"$ref": "#/components/schemas/ErrorResponse"}
    assert responses["ServiceUnavailable"]["headers"]["Retry-After"]["required"] is True
    for path, operations in document()["paths"].items():
        for method, operation in operations.items():
            if operation["tags"] != ["reference"]:  # /openapi.json and /docs use no database
                codes = set(operation["responses"])
                assert {"500", "503"} <= codes, (method, path)


def test_the_api_serves_the_document_without_a_key_while_orders_need_one(
    api_url: str, configure: Any
) -> None:
    configure(API_KEY="s3cret")
    status, body, headers = http_call(api_url, "GET", "/openapi.json")
    assert status == 200
    assert headers["content-type"] == "application/json"
    assert json.loads(json.dumps(body, default=float)) == json.loads(render())
    assert http_call(api_url, "GET", "/orders")[0] == 401
    assert http_call(api_url, "GET", "/orders", headers={"x-api-key": "s3cret"})[0] == 200


def test_without_a_key_the_served_document_declares_none(
    api_url: str, monkeypatch: Any
) -> None:
    from processor.config import settings

    monkeypatch.delenv("API_KEY", raising=False)
    monkeypatch.delenv("API_KEY_REQUIRED", raising=False)
    settings.cache_clear()
    status, body, _ = http_call(api_url, "GET", "/openapi.json")
    assert status == 200
    assert json.loads(json.dumps(body, default=float)) == json.loads(render(False))
    served = json.dumps(body, default=float)
    assert "ApiKey" not in served and "x-api-key" not in served
    assert http_call(api_url, "GET", "/orders")[0] == 200


def test_behind_api_gateway_the_document_declares_the_key_the_gateway_checks(
    api_url: str, configure: Any, monkeypatch: Any
) -> None:
    monkeypatch.delenv("API_KEY", raising=False)
    configure(API_KEY_REQUIRED="true")  # what the stack sets on the API function
    body = http_call(api_url, "GET", "/openapi.json")[1]
    assert json.loads(json.dumps(body, default=float)) == json.loads(render(True))
    operations = document(True)["paths"]
    assert operations["/orders"]["post"]["responses"]["403"] == {
        "$ref": "#/components/responses/Forbidden"
    }
    assert operations["/docs"]["get"]["security"] == []


def test_a_405_names_the_allowed_methods_and_an_unknown_route_is_404_for_any_method(
    api_url: str,
) -> None:
    """RFC 9110: a 405 carries `Allow`. Methods Chalice routes (PATCH) and methods the local
    server does not know at all (TRACE) answer alike."""
    for method in ("PATCH", "TRACE", "BREW"):
        status, body, headers = http_call(api_url, method, "/orders")
        assert (status, body["error"]["code"]) == (405, "METHOD_NOT_ALLOWED"), method
        assert sorted(headers["allow"].split(", ")) == ["GET", "POST"], method
        status, _, headers = http_call(api_url, method, "/orders/1/cancel")
        assert (status, headers["allow"]) == (405, "POST"), method
    status, body, headers = http_call(api_url, "TRACE", "/nowhere")
    assert (status, body["error"]["code"]) == (404, "NOT_FOUND")
    assert "allow" not in headers
