"""Keyset cursors: the (created_at, order_id) of the last row of a page, as 46 hex digits.

The format is exactly `CURSOR_PATTERN`, which the OpenAPI document publishes: every string that
matches it decodes to a position (one no order has reached just gives an empty or full page),
so a client or a fuzzer that follows the document never gets a 400 for a cursor. That is why
the timestamp is a fixed-width count of microseconds (PostgreSQL's precision) rather than
base64 of text: 14 hex digits reach the year 4253, inside what `datetime` represents.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from uuid import UUID

from processor.domain.errors import ValidationFailed

_MICROS_DIGITS = 14
CURSOR_PATTERN = rf"^[0-9a-f]{{{_MICROS_DIGITS + 32}}}$"
_CURSOR = re.compile(CURSOR_PATTERN)
CURSOR_MESSAGE = "must be the next_cursor of a previous page (46 lowercase hexadecimal digits)"
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def encode_cursor(created_at: datetime, order_id: UUID) -> str:
    micros = (created_at - _EPOCH) // timedelta(microseconds=1)
    return f"{micros:0{_MICROS_DIGITS}x}{order_id.hex}"


def decode_cursor(cursor: str) -> tuple[datetime, UUID]:
    if not _CURSOR.fullmatch(cursor):
        raise ValidationFailed(
            "cursor is not valid; use next_cursor from a previous page",
            [{"field": "cursor", "message": CURSOR_MESSAGE}],
        )
    micros = int(cursor[:_MICROS_DIGITS], 16)
    return _EPOCH + timedelta(microseconds=micros), UUID(hex=cursor[_MICROS_DIGITS:])
