"""The published contract: generated from the pydantic models, served without a key, checked in
as docs/openapi.json, and covering exactly the routes the app has."""

from __future__ import annotations

import json
from decimal import Decimal
from typing import Any

from jsonschema import Draft202012Validator

from processor.openapi import DOC_PATH, document, render
from processor.schemas import MAX_UNIT_PRICE
from tests.reliability.chaos import http_call


def test_checked_in_document_is_what_the_code_generates():
    assert DOC_PATH.read_text(encoding="utf-8") == render(), (
        "docs/openapi.json is stale: run `make openapi`"
    )


def test_document_is_valid_openapi_3_1():
    from schemathesis.specs.openapi.definitions import OPENAPI_31

    Draft202012Validator(OPENAPI_31).validate(json.loads(render()))
    for schema in document()["components"]["schemas"].values():
        Draft202012Validator.check_schema(schema)


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
            if path != "/openapi.json":
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
