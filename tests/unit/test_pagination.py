"""Cursors: what a page hands out comes back as the same position, and every string of the
published form is a position (so a client following the document never gets a 400 for one)."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from uuid import UUID, uuid4

import pytest
from hypothesis import given
from hypothesis import strategies as st

from processor.api.pagination import CURSOR_PATTERN, decode_cursor, encode_cursor
from processor.domain.errors import ValidationFailed


def test_a_cursor_decodes_to_the_row_it_was_made_from_to_the_microsecond():
    created_at, order_id = datetime(2026, 12, 1, 21, 30, 5, 123456, tzinfo=UTC), uuid4()
    cursor = encode_cursor(created_at, order_id)
    assert re.fullmatch(CURSOR_PATTERN, cursor)
    assert decode_cursor(cursor) == (created_at, order_id)


@given(st.from_regex(CURSOR_PATTERN, fullmatch=True))
def test_every_string_of_the_published_form_is_a_position(cursor: str) -> None:
    created_at, order_id = decode_cursor(cursor)
    assert created_at.tzinfo is UTC and isinstance(order_id, UUID)
    assert encode_cursor(created_at, order_id) == cursor


@pytest.mark.parametrize("cursor", ["", "abc", "0" * 45, "0" * 47, "G" * 46, "0" * 46 + "\n"])
def test_anything_else_is_a_validation_error(cursor: str) -> None:
    with pytest.raises(ValidationFailed):
        decode_cursor(cursor)
