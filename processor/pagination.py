"""Opaque keyset cursors: the (created_at, order_id) of the last row of a page."""

from __future__ import annotations

import base64
import binascii
from datetime import datetime
from uuid import UUID

from processor.errors import ValidationFailed


def encode_cursor(created_at: datetime, order_id: UUID) -> str:
    raw = f"{created_at.isoformat()}|{order_id}".encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(cursor: str) -> tuple[datetime, UUID]:
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
        created, order_id = raw.split("|")
        when = datetime.fromisoformat(created)
        if when.tzinfo is None:
            raise ValueError("naive timestamp")
        return when, UUID(order_id)
    except (ValueError, UnicodeDecodeError, binascii.Error):
        raise ValidationFailed(
            "cursor is not valid; use next_cursor from a previous page",
            [{"field": "cursor", "message": "invalid cursor"}],
        ) from None
