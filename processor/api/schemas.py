"""The API contract as pydantic v2 models: request validation and the OpenAPI schemas."""

from __future__ import annotations

import re
from datetime import datetime
from decimal import Decimal
from typing import TYPE_CHECKING, Annotated, Any
from uuid import UUID

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    PrivateAttr,
    StrictInt,
    field_validator,
    model_validator,
)

from processor.api.pagination import CURSOR_PATTERN
from processor.domain.model import CENT, LineItem, Status, order_total
from processor.domain.money import CURRENCIES, exponent, normalise_currency, to_minor


def _one_of(codes: list[str]) -> str:
    """A pattern matching exactly these codes, in lower or upper case (the server accepts any
    case). A pattern rather than an enum: fuzzers cover an enum value by value, and a hundred
    variants of one body under one Idempotency-Key are a hundred conflicts."""
    return "^(?:" + "|".join(sorted(codes) + sorted(c.upper() for c in codes)) + ")$"


CURRENCY_PATTERN = _one_of(sorted(CURRENCIES))
WHOLE_UNIT_PATTERN = _one_of([c for c in CURRENCIES if exponent(c) == 0])

if TYPE_CHECKING:  # the annotation only; the module itself is not needed at run time
    from pydantic.config import JsonDict

MAX_ITEMS = 100
MAX_QUANTITY = 10_000
MAX_UNIT_PRICE = Decimal("1000000.00")
# The largest total the field bounds allow; it fits NUMERIC(15,2) (migration 0002), so no
# order that passes the per-field rules is refused for its total, a rule the OpenAPI document
# could not state (JSON Schema has no sums).
MAX_TOTAL = MAX_ITEMS * MAX_QUANTITY * MAX_UNIT_PRICE
_EMAIL = re.compile(
    r"^[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+(?:\.[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+)*"
    r"@(?:[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?\.)+[A-Za-z]{2,63}$"
)
# Published as the email fields' `pattern`, so that a client (or fuzzer) that honours the
# document sends only addresses `normalise_email` accepts; `format: email` alone admits more.
_EMAIL_SCHEMA: JsonDict = {"format": "email", "pattern": _EMAIL.pattern}
# Names: at least one character that is not whitespace (pydantic strips it, as Unicode's
# White_Space, spelled out here because `\s` differs between Python, Rust and JSON Schema's
# ECMA-262 regexes) and no NUL, which PostgreSQL text cannot hold.
_SPACE = r"\t\n\v\f\r \x85\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000"
TEXT_PATTERN = rf"^[^\x00]*[^\x00{_SPACE}][^\x00]*$"


def _exact_number(value: Any) -> Any:
    """Accept JSON numbers only (already parsed to int/Decimal), never strings or floats."""
    if isinstance(value, bool) or not isinstance(value, (int, Decimal)):
        raise ValueError("must be a JSON number")
    return Decimal(value)


def _whole_number(value: Any) -> Any:
    """A JSON number with no fraction is an integer (`2.0` is 2, as JSON Schema has it);
    anything else is left for StrictInt to refuse."""
    if isinstance(value, Decimal) and value.is_finite() and value == value.to_integral_value():
        return int(value)
    return value


def _whole_cents(value: Decimal) -> Decimal:
    """At most two decimal places once trailing zeros are ignored (24.990 is 24.99).

    Checked here rather than with `Field(decimal_places=2)`, which pydantic runs through
    several Python helpers per value on every order's request path; the schema still states
    the rule (`decimal_places` below)."""
    exponent = value.as_tuple().exponent  # an int: the Field's bounds let no NaN or Infinity by
    if isinstance(exponent, int) and exponent < -2 and value != value.quantize(CENT):
        raise ValueError("must have at most 2 decimal places")
    return value


Money = Annotated[
    Decimal,
    BeforeValidator(_exact_number),
    Field(ge=0, le=MAX_UNIT_PRICE, examples=[24.99], json_schema_extra={"decimal_places": 2}),
    AfterValidator(_whole_cents),
]


def normalise_email(value: str) -> str:
    """Lower-cased; `_EMAIL` plus RFC 5321's 64-character local part, which the document's
    `format: email` states (the pattern cannot count it without a lookahead)."""
    value = value.strip().lower()
    local = value.partition("@")[0]
    if len(value) > 254 or len(local) > 64 or not _EMAIL.match(value):
        raise ValueError("must be a valid email address")
    return value


class OrderItemIn(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    product_name: str = Field(
        min_length=1, max_length=200, pattern=TEXT_PATTERN, examples=["Widget"]
    )
    quantity: Annotated[StrictInt, BeforeValidator(_whole_number)] = Field(
        ge=1, le=MAX_QUANTITY, examples=[2]
    )
    unit_price: Money


class CreateOrderRequest(BaseModel):
    model_config = ConfigDict(
        extra="forbid",
        str_strip_whitespace=True,
        # Whole prices in zero-decimal currencies, stated so that a request the document
        # allows is never refused (24.99 JPY does not exist).
        json_schema_extra={
            "if": {
                "properties": {"currency": {"type": "string", "pattern": WHOLE_UNIT_PATTERN}},
                "required": ["currency"],
            },
            "then": {
                "properties": {
                    "items": {"items": {"properties": {"unit_price": {"multipleOf": 1}}}}
                }
            },
        },
    )

    customer_email: str = Field(
        max_length=254, examples=["ada@example.com"], json_schema_extra=_EMAIL_SCHEMA
    )
    customer_name: str = Field(
        min_length=1, max_length=200, pattern=TEXT_PATTERN, examples=["Ada Lovelace"]
    )
    items: list[OrderItemIn] = Field(min_length=1, max_length=MAX_ITEMS)
    currency: str | None = Field(
        default=None,
        description="ISO 4217 code, any case; stored and returned in lower case. Default: the"
        " server's DEFAULT_CURRENCY (usd). Zero-decimal currencies (jpy...) take whole prices.",
        examples=["usd"],
        json_schema_extra={"pattern": CURRENCY_PATTERN},
    )
    payment_method: str | None = Field(
        default=None,
        min_length=1,
        max_length=255,
        pattern=r"^[A-Za-z0-9_]+$",
        description="The provider's payment-method id (required with Stripe), e.g."
        " `pm_card_visa`; the simulator gives Stripe's test ids their Stripe meaning.",
        examples=["pm_card_visa"],
    )

    _email = field_validator("customer_email")(normalise_email)

    @field_validator("currency")
    @classmethod
    def _currency(cls, value: str | None) -> str | None:
        return None if value is None else normalise_currency(value)

    _total: Decimal = PrivateAttr()

    @model_validator(mode="after")
    def _work_out_total(self) -> CreateOrderRequest:
        self._total = order_total(self.line_items())
        if self.currency is not None:
            for item in self.items:  # 24.99 JPY does not exist; never round a price
                to_minor(item.unit_price, self.currency)
        return self

    def line_items(self) -> list[LineItem]:
        return [LineItem(i.product_name, i.quantity, i.unit_price) for i in self.items]

    def total(self) -> Decimal:
        """Worked out once, by the validator above."""
        return self._total


class ListOrdersQuery(BaseModel):
    """Every combination of valid fields is a valid query (OpenAPI cannot state dependencies
    between query parameters, so the document could not warn of a forbidden pair)."""

    model_config = ConfigDict(extra="forbid")

    limit: int = Field(default=50, ge=1, le=100, description="Page size.")
    offset: int = Field(
        default=0,
        ge=0,
        le=1_000_000,
        description="Orders to skip (after `cursor`, when given). Slow when deep; prefer `cursor`.",
    )
    status: Status | None = Field(default=None, description="Only orders in this status.")
    customer_email: str | None = Field(
        default=None,
        max_length=254,
        json_schema_extra=_EMAIL_SCHEMA,
        description="Only this customer's orders (compared case-insensitively).",
    )
    cursor: str | None = Field(
        default=None,
        pattern=CURSOR_PATTERN,
        description="`next_cursor` of the previous page (opaque; any value of this form works).",
    )

    @field_validator("customer_email")
    @classmethod
    def _email(cls, value: str | None) -> str | None:
        return None if value is None else normalise_email(value)


class OrderItemOut(BaseModel):
    product_name: str
    quantity: int
    unit_price: Decimal
    subtotal: Decimal


class _OrderFields(BaseModel):
    order_id: UUID
    customer_email: str
    customer_name: str
    total_amount: Decimal
    currency: str = Field(description="ISO 4217, lower case.", examples=["usd"])
    status: Status
    items: list[OrderItemOut]
    created_at: datetime


class OrderOut(_OrderFields):
    updated_at: datetime


class CreatedOrder(_OrderFields):
    message: str


class StatusChange(BaseModel):
    status: Status
    message: str = Field(
        description="What the step means; a decline or cancel adds its reason after a colon.",
        examples=["Payment processed successfully", "Payment declined: card_declined"],
    )
    created_at: datetime


class PaymentOut(BaseModel):
    provider: str = Field(examples=["stripe"])
    provider_reference: str | None = Field(
        description="The provider's id, e.g. the PaymentIntent id.", examples=["pi_123"]
    )
    status: str = Field(
        description="AUTHORIZING, AUTHORIZED, DECLINED, CAPTURING, CAPTURED, CAPTURE_FAILED,"
        " VOIDING or VOIDED (an *ING status: the provider call is under way or will be"
        " repeated)."
    )
    currency: str
    amount_authorized: Decimal
    amount_captured: Decimal
    amount_refunded: Decimal


class RefundRequestBody(BaseModel):
    """Both optional: no amount refunds everything captured and not yet refunded."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    amount: (
        Annotated[
            Decimal,
            BeforeValidator(_exact_number),
            Field(gt=0, le=MAX_TOTAL, examples=[10.5], json_schema_extra={"decimal_places": 2}),
            AfterValidator(_whole_cents),
        ]
        | None
    ) = None
    reason: str | None = Field(
        default=None, min_length=1, max_length=500, pattern=TEXT_PATTERN, examples=["damaged"]
    )


class RefundOut(BaseModel):
    refund_id: UUID
    order_id: UUID
    amount: Decimal
    currency: str
    reason: str | None
    status: str = Field(description="PENDING, SUCCEEDED or FAILED.")
    provider_reference: str | None
    created_at: datetime


class OrderDetail(OrderOut):
    status_history: list[StatusChange] = Field(description="Newest first.")
    payment: PaymentOut | None = Field(description="None until the payment is started.")
    refunds: list[RefundOut] = Field(description="Oldest first.")


class OrderPage(BaseModel):
    orders: list[OrderOut]
    count: int
    limit: int
    offset: int
    has_more: bool
    next_cursor: str | None


class ErrorDetail(BaseModel):
    field: str
    message: str


class ErrorInfo(BaseModel):
    code: str
    message: str
    details: list[ErrorDetail] = []


class ErrorResponse(BaseModel):
    error: ErrorInfo
