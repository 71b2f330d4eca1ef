from decimal import Decimal

import pytest

from processor.domain.money import UnsupportedAmount, from_minor, normalise_currency, to_minor


@pytest.mark.parametrize(
    ("amount", "currency", "minor"),
    [
        ("125.97", "usd", 12597),
        ("0.10", "EUR", 10),
        ("1250", "jpy", 1250),
        ("1.234", "kwd", 1234),
        ("1000000000000.00", "usd", 100000000000000),
    ],
)
def test_amounts_go_to_the_provider_in_exact_minor_units(amount, currency, minor):
    assert to_minor(Decimal(amount), currency) == minor
    assert from_minor(minor, currency) == Decimal(amount)


@pytest.mark.parametrize(("amount", "currency"), [("24.99", "jpy"), ("0.001", "usd")])
def test_an_amount_finer_than_the_currency_allows_is_refused_never_rounded(amount, currency):
    with pytest.raises(UnsupportedAmount):
        to_minor(Decimal(amount), currency)


def test_currency_codes_are_accepted_in_any_case_and_unknown_ones_refused():
    assert normalise_currency(" UsD ") == "usd"
    with pytest.raises(UnsupportedAmount):
        normalise_currency("xyz")
