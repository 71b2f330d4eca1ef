from datetime import UTC, datetime
from decimal import Decimal
from uuid import UUID

import pytest

from processor.jsonutil import dumps, loads


def test_numbers_parse_to_decimal_without_float_rounding():
    assert loads('{"a": 0.1}')["a"] == Decimal("0.1")


def test_decimals_print_as_json_numbers_exactly():
    assert (
        dumps({"total": Decimal("125.97"), "x": Decimal("0.30")}) == '{"total": 125.97, "x": 0.30}'
    )


def test_round_trip_keeps_types_and_text():
    value = {"s": 'é"', "n": None, "b": True, "i": 3, "l": [Decimal("1.00")]}
    assert loads(dumps(value)) == value


def test_datetimes_and_uuids_are_strings():
    when = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)
    uid = UUID(int=1)
    assert loads(dumps([when, uid])) == [when.isoformat(), str(uid)]


@pytest.mark.parametrize("text", ["NaN", "Infinity", "-Infinity", '{"a": NaN}'])
def test_non_finite_numbers_are_rejected(text):
    with pytest.raises(ValueError):
        loads(text)


def test_unknown_types_are_not_silently_stringified():
    with pytest.raises(TypeError):
        dumps({"x": object()})
