"""Errors the service raises on purpose; entrypoints turn them into JSON responses."""

from __future__ import annotations

from typing import Any


class ServiceError(Exception):
    """An error with its HTTP status and JSON error code. Subclasses name theirs as class
    keywords, so the list below reads as the table of responses it is, one line a type."""

    status_code = 400
    code = "BAD_REQUEST"

    def __init_subclass__(
        cls, status_code: int | None = None, code: str | None = None, **kwargs: Any
    ) -> None:
        """Set what the subclass names; what it leaves out stays inherited."""
        super().__init_subclass__(**kwargs)
        if status_code is not None:
            cls.status_code = status_code
        if code is not None:
            cls.code = code

    def __init__(
        self,
        message: str,
        details: list[dict[str, Any]] | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.details = details or []
        self.headers = headers or {}

    def body(self) -> dict[str, Any]:
        error: dict[str, Any] = {"code": self.code, "message": self.message}
        if self.details:
            error["details"] = self.details
        return {"error": error}


class ValidationFailed(ServiceError, code="VALIDATION_ERROR"): ...


class InvalidJson(ServiceError, code="INVALID_JSON"): ...


class InvalidSignature(ServiceError, code="INVALID_SIGNATURE"): ...


class Unauthorized(ServiceError, status_code=401, code="UNAUTHORIZED"): ...


class OrderNotFound(ServiceError, status_code=404, code="ORDER_NOT_FOUND"): ...


class RouteNotFound(ServiceError, status_code=404, code="NOT_FOUND"): ...


class MethodNotAllowed(ServiceError, status_code=405, code="METHOD_NOT_ALLOWED"): ...


class IdempotencyKeyReused(ServiceError, status_code=409, code="IDEMPOTENCY_KEY_REUSED"): ...


class InvalidOrderState(ServiceError, status_code=409, code="INVALID_ORDER_STATE"): ...


class PayloadTooLarge(ServiceError, status_code=413, code="PAYLOAD_TOO_LARGE"): ...


class UnsupportedMediaType(ServiceError, status_code=415, code="UNSUPPORTED_MEDIA_TYPE"): ...


class WebhookNotConfigured(ServiceError, status_code=503, code="WEBHOOK_NOT_CONFIGURED"): ...


class ServiceUnavailable(ServiceError, status_code=503, code="SERVICE_UNAVAILABLE"): ...


class InternalError(ServiceError, status_code=500, code="INTERNAL_ERROR"): ...


class Forbidden(ServiceError, status_code=403, code="FORBIDDEN"): ...


class RefundExceedsCaptured(ServiceError, status_code=409, code="REFUND_EXCEEDS_CAPTURED"): ...


class PaymentProviderUnavailable(
    ServiceError, status_code=503, code="PAYMENT_PROVIDER_UNAVAILABLE"
): ...
