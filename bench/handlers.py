"""Call the Chalice Lambda handlers in-process, as Lambda does: `app(event, context)` with an
API Gateway (REST, v1) proxy event, no HTTP server and no test client in between."""

from __future__ import annotations

import sys
import uuid
from decimal import Decimal
from typing import Any

from bench.env import REPO
from processor.jsonutil import dumps


def load_app() -> Any:
    """The `app` object of chalice_app/app.py, made safe to call from several threads."""
    path = str(REPO / "chalice_app")
    if path not in sys.path:
        sys.path.insert(0, path)
    import app as module

    return thread_safe(module.app)


def thread_safe(app: Any) -> Any:
    """Give a Chalice app one `current_request` per thread.

    Chalice keeps the current request on the app object (one request at a time, as in a
    Lambda container); threads standing in for containers need it per thread. This is what
    `processor.devstack.local.start_api` (like `chalice local`) does, in the same way, so the two
    compose in one process.
    """
    from chalice.local import CustomLocalChalice, LocalChalice

    if not isinstance(app, LocalChalice):
        CustomLocalChalice.__bases__ = (LocalChalice, app.__class__)
        app.__class__ = CustomLocalChalice
    return app


def order_body(items: int = 3, email: str = "ada@example.com") -> dict[str, Any]:
    return {
        "customer_email": email,
        "customer_name": "Ada Lovelace",
        "items": [
            {"product_name": f"Widget {n}", "quantity": 1 + n % 3, "unit_price": Decimal("24.99")}
            for n in range(items)
        ],
    }


def to_json(body: dict[str, Any]) -> str:
    """JSON with Decimals as exact numbers, as a client would send them."""
    return dumps(body)


def proxy_event(
    method: str,
    resource: str,
    path: str | None = None,
    body: str | None = None,
    headers: dict[str, str] | None = None,
    path_parameters: dict[str, str] | None = None,
) -> dict[str, Any]:
    """An API Gateway REST proxy event, as the Lambda integration delivers it."""
    all_headers = {"content-type": "application/json", **(headers or {})}
    return {
        "resource": resource,
        "path": path or resource,
        "httpMethod": method,
        "headers": all_headers,
        "multiValueHeaders": {k: [v] for k, v in all_headers.items()},
        "queryStringParameters": None,
        "multiValueQueryStringParameters": None,
        "pathParameters": path_parameters,
        "stageVariables": None,
        "requestContext": {
            "resourcePath": resource,
            "httpMethod": method,
            "path": f"/api{path or resource}",
            "stage": "api",
            "requestId": str(uuid.uuid4()),
            "identity": {"sourceIp": "127.0.0.1"},
        },
        "body": body,
        "isBase64Encoded": False,
    }


class LambdaContext:
    function_name = "orderflow-dev"
    memory_limit_in_mb = 512
    aws_request_id = "bench"

    def get_remaining_time_in_millis(self) -> int:
        return 30_000


CONTEXT = LambdaContext()


def invoke(app: Any, event: dict[str, Any], expect: int | None = None) -> dict[str, Any]:
    response: dict[str, Any] = app(event, CONTEXT)
    if expect is not None and response["statusCode"] != expect:
        raise RuntimeError(f"expected {expect}, got {response['statusCode']}: {response['body']}")
    return response
