"""A payment's own lifecycle next to the order's, and the provider idempotency keys.

One key per provider operation, derived from the order (or the refund) alone: whoever repeats
an operation (a redelivery, a retried request, a process started after a crash) sends the
same key, so the provider answers it once.
"""

from __future__ import annotations

from enum import StrEnum
from uuid import UUID


class PaymentStatus(StrEnum):
    """Stored in payments.status. Each *ING status is an intent committed before the provider
    call; the status after it is the provider's answer, committed after."""

    AUTHORIZING = "AUTHORIZING"
    AUTHORIZED = "AUTHORIZED"
    DECLINED = "DECLINED"
    CAPTURING = "CAPTURING"
    CAPTURED = "CAPTURED"
    CAPTURE_FAILED = "CAPTURE_FAILED"
    VOIDING = "VOIDING"
    VOIDED = "VOIDED"


class RefundStatus(StrEnum):
    PENDING = "PENDING"
    SUCCEEDED = "SUCCEEDED"
    FAILED = "FAILED"


def authorize_key(order_id: UUID) -> str:
    return f"order-{order_id}-authorize"


def capture_key(order_id: UUID) -> str:
    return f"order-{order_id}-capture"


def void_key(order_id: UUID) -> str:
    return f"order-{order_id}-void"


def refund_key(refund_id: UUID) -> str:
    return f"refund-{refund_id}"
