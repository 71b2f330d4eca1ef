"""Request parsing and the one JSON error shape, `{"error": {"code", "message", "details"}}`."""

from __future__ import annotations

import functools
import hmac
import logging
import re
import uuid
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any, TypeVar

from chalice import Chalice, Response
from chalice.app import Request

from db.errors import DatabaseUnavailable
from processor.config import settings
from processor.domain import errors
from processor.domain.model import IDEMPOTENCY_KEY_PATTERN
from processor.jsonutil import dumps, loads

if TYPE_CHECKING:  # pydantic is imported by the first validation, not on every cold start
    from pydantic import BaseModel

log = logging.getLogger("orderflow.api")
JSON_HEADERS = {"Content-Type": "application/json"}
Model = TypeVar("Model", bound="BaseModel")
_IDEMPOTENCY_KEY = re.compile(IDEMPOTENCY_KEY_PATTERN)

# Chalice's own errors (raised before our views run) mapped to our codes.
_CHALICE_CODES = {
    "UnsupportedMediaType": errors.UnsupportedMediaType,
    "MethodNotAllowedError": errors.MethodNotAllowed,
    "BadRequestError": errors.InvalidJson,
    "NotFoundError": errors.RouteNotFound,
}


def json_response(
    body: Any, status: int = 200, headers: Mapping[str, str | list[str]] | None = None
) -> Response:
    return Response(
        body=dumps(body), status_code=status, headers={**JSON_HEADERS, **(headers or {})}
    )


def error_response(error: errors.ServiceError) -> Response:
    return json_response(error.body(), error.status_code, error.headers)


def api_view(view: Callable[..., Response]) -> Callable[..., Response]:
    """Map service errors to JSON responses; database outages to 503 with Retry-After."""

    @functools.wraps(view)
    def wrapper(*args: Any, **kwargs: Any) -> Response:
        try:
            return view(*args, **kwargs)
        except errors.ServiceError as error:
            return error_response(error)
        except DatabaseUnavailable:
            log.warning("database unavailable", exc_info=True)
            return error_response(
                errors.ServiceUnavailable(
                    "the database is temporarily unavailable; retry shortly",
                    headers={"Retry-After": "5"},
                )
            )
        except Exception:
            log.exception("unhandled error")
            return error_response(errors.InternalError("an internal error occurred"))

    return wrapper


def normalise_chalice_error(response: Response) -> Response:
    """Rewrite Chalice's `{"Code", "Message"}` bodies into our error shape."""
    body = response.body
    if isinstance(body, dict) and "Code" in body and response.status_code >= 400:
        error_class = _CHALICE_CODES.get(body["Code"], errors.InternalError)
        error = error_class(str(body.get("Message", "")))
        headers = {k: v for k, v in response.headers.items() if k.lower() == "allow"}
        return json_response(error.body(), response.status_code, headers)
    return response


def current_request(app: Chalice) -> Request:
    """The request a route handler is serving (Chalice sets it before calling the route)."""
    request = app.current_request
    if request is None:
        raise RuntimeError("no current request: only route handlers may ask for it")
    return request


def require_api_key(request: Request) -> None:
    """Locally (and on Fargate) enforce `API_KEY` when set; API Gateway does it in the cloud."""
    expected = settings().api_key
    if expected is None:
        return
    given = request.headers.get("x-api-key", "")
    if not hmac.compare_digest(given.encode(), expected.encode()):
        raise errors.Unauthorized("missing or invalid x-api-key header")


def parse_body(request: Request, model: type[Model]) -> Model:
    raw = request.raw_body or b""
    if len(raw) > settings().max_body_bytes:
        raise errors.PayloadTooLarge(f"request body exceeds {settings().max_body_bytes} bytes")
    try:
        data = loads(raw)
    except ValueError as error:
        raise errors.InvalidJson(f"request body is not valid JSON: {error}") from None
    if not isinstance(data, dict):
        raise errors.ValidationFailed("request body must be a JSON object")
    return validate(model, data)


def validate(model: type[Model], data: dict[str, Any]) -> Model:
    from pydantic import ValidationError

    try:
        return model.model_validate(data)
    except ValidationError as error:
        details = [
            {
                "field": ".".join(str(part) for part in problem["loc"]) or "body",
                "message": problem["msg"],
            }
            for problem in error.errors(include_url=False)
        ]
        raise errors.ValidationFailed("request validation failed", details) from None


def correlation_id_for(request: Request) -> str:
    """The caller's `X-Correlation-Id` if sane, else API Gateway's request id, else a new one."""
    given = str(request.headers.get("x-correlation-id", ""))
    if 1 <= len(given) <= 100 and given.isprintable():
        return given
    request_id = (request.context or {}).get("requestId")
    return str(request_id) if request_id else str(uuid.uuid4())


def idempotency_key(request: Request) -> str | None:
    key: str | None = request.headers.get("idempotency-key")
    if key is None:
        return None
    if not _IDEMPOTENCY_KEY.fullmatch(key):
        raise errors.ValidationFailed(
            "Idempotency-Key must be 1-255 visible ASCII characters (spaces inside allowed)",
            [{"field": "Idempotency-Key", "message": "invalid"}],
        )
    return key
