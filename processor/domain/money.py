"""Currencies and minor units: what a payment provider is sent, exactly.

Stripe (like most providers) takes integer amounts in the currency's smallest unit: cents for
USD, whole yen for JPY (a zero-decimal currency), fils for KWD (three decimals). Converting
with the wrong exponent charges 100 times too much or too little, so the table is here, in the
pure core, and an amount that the currency cannot express is refused rather than rounded.
"""

from __future__ import annotations

from decimal import Decimal

# ISO 4217 minor-unit exponents of the currencies accepted (lower-case codes, as Stripe
# writes them). Zero-decimal and three-decimal ones listed explicitly; every other has two.
_ZERO_DECIMAL = frozenset(
    {"bif", "clp", "djf", "gnf", "jpy", "kmf", "krw", "mga", "pyg", "rwf", "ugx", "vnd"}
    | {"vuv", "xaf", "xof", "xpf"}
)
_THREE_DECIMAL = frozenset({"bhd", "jod", "kwd", "omr", "tnd"})
_TWO_DECIMAL = frozenset(
    {"aed", "aud", "brl", "cad", "chf", "cny", "czk", "dkk", "eur", "gbp", "hkd", "huf"}
    | {"idr", "ils", "inr", "mxn", "myr", "nok", "nzd", "php", "pln", "ron", "sar", "sek"}
    | {"sgd", "thb", "try", "twd", "usd", "zar"}
)
CURRENCIES: frozenset[str] = _ZERO_DECIMAL | _THREE_DECIMAL | _TWO_DECIMAL


class UnsupportedAmount(ValueError):
    """An amount the currency cannot express (e.g. 24.99 JPY) or an unknown currency."""


def normalise_currency(code: str) -> str:
    """Any case in, lower case out (stored and returned so); unknown codes are refused."""
    lowered = code.strip().lower()
    if lowered not in CURRENCIES:
        raise UnsupportedAmount(f"unknown or unsupported currency {code!r}")
    return lowered


def exponent(currency: str) -> int:
    currency = normalise_currency(currency)
    if currency in _ZERO_DECIMAL:
        return 0
    return 3 if currency in _THREE_DECIMAL else 2


def to_minor(amount: Decimal, currency: str) -> int:
    """`amount` in minor units, exactly; refuses fractions of the smallest unit."""
    scaled = amount.scaleb(exponent(currency))
    if scaled != scaled.to_integral_value():
        raise UnsupportedAmount(f"{amount} has more decimals than {currency.upper()} allows")
    return int(scaled)


def from_minor(amount_minor: int, currency: str) -> Decimal:
    """The exact decimal amount of `amount_minor` units (for responses and emails)."""
    places = exponent(currency)
    return Decimal(amount_minor).scaleb(-places).quantize(Decimal(1).scaleb(-max(places, 2)))
