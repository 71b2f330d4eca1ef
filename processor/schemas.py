"""The API contract as pydantic v2 models: request validation and the OpenAPI schemas."""

from __future__ import annotations

import re
from datetime import datetime
from decimal import Decimal
from typing import Annotated, Any
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

from processor.domain import CENT, LineItem, Status, order_total

MAX_TOTAL = Decimal("9999999999.99")  # NUMERIC(12,2)
MAX_UNIT_PRICE = Decimal("1000000.00")
_EMAIL = re.compile(
    r"^[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+(?:\.[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+)*"
    r"@(?:[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?\.)+[A-Za-z]{2,63}$"
)


def _exact_number(value: Any) -> Any:
    """Accept JSON numbers only (already parsed to int/Decimal), never strings or floats."""
    if isinstance(value, bool) or not isinstance(value, (int, Decimal)):
        raise ValueError("must be a JSON number")
    return Decimal(value)


def _whole_cents(value: Decimal) -> Decimal:
    """At most two decimal places once trailing zeros are ignored (24.990 is 24.99).

    Checked here rather than with `Field(decimal_places=2)`, which pydantic runs through
    several Python helpers per value on every order's request path; the schema still states
    the rule (`decimal_places` below)."""
    if value.as_tuple().exponent < -2 and value != value.quantize(CENT):
        raise ValueError("must have at most 2 decimal places")
    return value


Money = Annotated[
    Decimal,
    BeforeValidator(_exact_number),
    Field(ge=0, le=MAX_UNIT_PRICE, examples=[24.99], json_schema_extra={"decimal_places": 2}),
    AfterValidator(_whole_cents),
]


def normalise_email(value: str) -> str:
    value = value.strip().lower()
    if len(value) > 254 or not _EMAIL.match(value):
        raise ValueError("must be a valid email address")
    return value


class OrderItemIn(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    product_name: str = Field(min_length=1, max_length=200, examples=["Widget"])
    quantity: StrictInt = Field(ge=1, le=10_000, examples=[2])
    unit_price: Money


class CreateOrderRequest(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    customer_email: str = Field(
        max_length=254, examples=["ada@example.com"], json_schema_extra={"format": "email"}
    )
    customer_name: str = Field(min_length=1, max_length=200, examples=["Ada Lovelace"])
    items: list[OrderItemIn] = Field(min_length=1, max_length=100)

    _email = field_validator("customer_email")(normalise_email)

    _total: Decimal = PrivateAttr()

    @model_validator(mode="after")
    def _total_fits(self) -> CreateOrderRequest:
        self._total = order_total(self.line_items())
        if self._total > MAX_TOTAL:
            raise ValueError(f"order total must not exceed {MAX_TOTAL}")
        return self

    def line_items(self) -> list[LineItem]:
        return [LineItem(i.product_name, i.quantity, i.unit_price) for i in self.items]

    def total(self) -> Decimal:
        """Worked out once, by the validator above."""
        return self._total


class ListOrdersQuery(BaseModel):
    model_config = ConfigDict(extra="forbid")

    limit: int = Field(default=50, ge=1, le=100)
    offset: int = Field(default=0, ge=0, le=1_000_000)
    status: Status | None = None
    customer_email: str | None = Field(
        default=None, max_length=254, json_schema_extra={"format": "email"}
    )
    cursor: str | None = Field(default=None, max_length=200)

    @field_validator("customer_email")
    @classmethod
    def _email(cls, value: str | None) -> str | None:
        return None if value is None else normalise_email(value)

    @model_validator(mode="after")
    def _one_paging_style(self) -> ListOrdersQuery:
        if self.cursor is not None and self.offset:
            raise ValueError("use either cursor or offset, not both")
        return self


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


class OrderDetail(OrderOut):
    status_history: list[StatusChange] = Field(description="Newest first.")


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
