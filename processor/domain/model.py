"""Pure domain core: statuses, the lifecycle as a transition table, and exact money.

Nothing here does I/O, so every rule can be unit-tested and reused by every entrypoint.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal
from enum import StrEnum


class Status(StrEnum):
    PENDING = "PENDING"
    PROCESSING = "PROCESSING"
    PAYMENT_CONFIRMED = "PAYMENT_CONFIRMED"
    PAYMENT_FAILED = "PAYMENT_FAILED"
    FULFILLED = "FULFILLED"
    COMPLETED = "COMPLETED"
    CANCELLED = "CANCELLED"
    REFUNDED = "REFUNDED"


# The whole lifecycle in one table: status -> statuses it may move to.
TRANSITIONS: dict[Status, frozenset[Status]] = {
    Status.PENDING: frozenset({Status.PROCESSING, Status.CANCELLED}),
    Status.PROCESSING: frozenset(
        {Status.PAYMENT_CONFIRMED, Status.PAYMENT_FAILED, Status.CANCELLED}
    ),
    # PAYMENT_FAILED here: the provider refused the capture for good (an expired or voided
    # authorisation); CANCELLED: the authorisation was voided.
    Status.PAYMENT_CONFIRMED: frozenset(
        {Status.FULFILLED, Status.PAYMENT_FAILED, Status.CANCELLED}
    ),
    Status.FULFILLED: frozenset({Status.COMPLETED, Status.REFUNDED}),
    Status.COMPLETED: frozenset({Status.REFUNDED}),
    Status.PAYMENT_FAILED: frozenset(),
    Status.CANCELLED: frozenset(),
    Status.REFUNDED: frozenset(),
}

# Where the processor's work ends. COMPLETED is one although a refund may still follow: that
# move is the customer's (POST /orders/{id}/refunds), never a processing step.
FINAL_STATUSES: frozenset[Status] = frozenset(
    {Status.COMPLETED, Status.PAYMENT_FAILED, Status.CANCELLED, Status.REFUNDED}
)
# Once captured, money goes back through refunds only.
REFUNDABLE_STATUSES: frozenset[Status] = frozenset(
    s for s, nxt in TRANSITIONS.items() if Status.REFUNDED in nxt
)
CANCELLABLE_STATUSES: frozenset[Status] = frozenset(
    s for s, nxt in TRANSITIONS.items() if Status.CANCELLED in nxt
)


class InvalidTransition(Exception):
    """A status change that the lifecycle table does not allow."""

    def __init__(self, current: Status, target: Status) -> None:
        super().__init__(f"cannot move an order from {current} to {target}")
        self.current = current
        self.target = target


def can_transition(current: Status, target: Status) -> bool:
    return target in TRANSITIONS[current]


def check_transition(current: Status, target: Status) -> None:
    if not can_transition(current, target):
        raise InvalidTransition(current, target)


def is_final(status: Status) -> bool:
    return status in FINAL_STATUSES


CENT = Decimal("0.01")
# An Idempotency-Key: visible ASCII, spaces inside only (HTTP strips them at the ends), at most
# 255 characters. Checked by the API and published as-is in the OpenAPI document.
IDEMPOTENCY_KEY_PATTERN = r"^[!-~](?:[ -~]{0,253}[!-~])?$"


def to_money(value: Decimal | int | str) -> Decimal:
    """Normalise an exact amount to two decimal places (half-up, as on an invoice)."""
    return Decimal(value).quantize(CENT, rounding=ROUND_HALF_UP)


@dataclass(frozen=True)
class LineItem:
    product_name: str
    quantity: int
    unit_price: Decimal

    @property
    def subtotal(self) -> Decimal:
        return to_money(self.unit_price * self.quantity)


def order_total(items: list[LineItem]) -> Decimal:
    """Sum of line subtotals, exact: 0.10 + 0.20 is 0.30, never 0.30000000000000004."""
    return to_money(sum((item.subtotal for item in items), Decimal(0)))
