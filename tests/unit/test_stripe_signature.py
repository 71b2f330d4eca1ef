"""Stripe-Signature verification (processor/adapters/stripe_signature.py), pure and offline.

Signatures here are computed with hashlib/hmac directly, as Stripe documents them, not with
the module under test; tests/integration/test_stripe_webhook.py checks headers that
localstripe itself produced.
"""

from __future__ import annotations

import hashlib
import hmac

import pytest

from processor.adapters.stripe_signature import SignatureError, parse_header, verify

SECRET = "whsec_test_secret"
BODY = b'{"id": "evt_1", "type": "payment_intent.succeeded"}'
NOW = 1_800_000_000


def stripe_sign(body: bytes, secret: str, timestamp: int) -> str:
    return hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256).hexdigest()


def header(timestamp: int, *signatures: str) -> str:
    return ",".join([f"t={timestamp}", *(f"v1={s}" for s in signatures)])


def test_a_correct_signature_verifies_and_returns_its_timestamp() -> None:
    signed = header(NOW, stripe_sign(BODY, SECRET, NOW))
    assert verify(BODY, signed, [SECRET], now=NOW) == NOW


def test_any_one_of_several_v1_signatures_may_match() -> None:
    signed = header(NOW, "00" * 32, stripe_sign(BODY, SECRET, NOW), "ff" * 32)
    assert verify(BODY, signed, [SECRET], now=NOW) == NOW


def test_the_old_or_the_new_secret_verifies_while_a_secret_is_rolled() -> None:
    signed = header(NOW, stripe_sign(BODY, "whsec_old", NOW))
    assert verify(BODY, signed, ["whsec_new", "whsec_old"], now=NOW) == NOW


def test_v0_and_unknown_entries_are_ignored_beside_a_valid_v1() -> None:
    signed = f"t={NOW},v0=abc,x=1,v1={stripe_sign(BODY, SECRET, NOW)},junk"
    assert verify(BODY, signed, [SECRET], now=NOW) == NOW


@pytest.mark.parametrize(
    ("given", "message"),
    [
        (None, "missing"),
        ("", "missing"),
        (f"v1={'a' * 64}", "no timestamp or no v1"),
        (f"t={NOW}", "no timestamp or no v1"),
        (f"t={NOW},v0=abc", "no timestamp or no v1"),
        (f"t=soon,v1={'a' * 64}", "not a number"),
    ],
)
def test_a_missing_or_malformed_header_is_refused_with_the_reason(
    given: str | None, message: str
) -> None:
    with pytest.raises(SignatureError, match=message):
        verify(BODY, given, [SECRET], now=NOW)


def test_a_signature_made_with_another_secret_is_refused() -> None:
    signed = header(NOW, stripe_sign(BODY, "whsec_attacker", NOW))
    with pytest.raises(SignatureError, match="no Stripe-Signature v1 signature matches"):
        verify(BODY, signed, [SECRET], now=NOW)


def test_a_changed_body_no_longer_matches_its_signature() -> None:
    signed = header(NOW, stripe_sign(BODY, SECRET, NOW))
    with pytest.raises(SignatureError, match="matches"):
        verify(BODY.replace(b"succeeded", b"canceled"), signed, [SECRET], now=NOW)


def test_a_signature_moved_to_another_timestamp_is_refused() -> None:
    signed = header(NOW + 1, stripe_sign(BODY, SECRET, NOW))
    with pytest.raises(SignatureError, match="matches"):
        verify(BODY, signed, [SECRET], now=NOW)


def test_a_timestamp_older_than_five_minutes_is_refused_and_one_just_inside_passes() -> None:
    old, fresh = NOW - 301, NOW - 300
    with pytest.raises(SignatureError, match="more than 300 s old"):
        verify(BODY, header(old, stripe_sign(BODY, SECRET, old)), [SECRET], now=NOW)
    assert verify(BODY, header(fresh, stripe_sign(BODY, SECRET, fresh)), [SECRET], now=NOW)


def test_no_secret_configured_verifies_nothing() -> None:
    with pytest.raises(SignatureError):
        verify(BODY, header(NOW, stripe_sign(BODY, SECRET, NOW)), [], now=NOW)


def test_parse_header_keeps_every_v1_signature_in_order() -> None:
    assert parse_header(f"t={NOW}, v1=aa ,v1=bb") == (NOW, ["aa", "bb"])


def test_every_candidate_is_compared_with_compare_digest(monkeypatch: pytest.MonkeyPatch) -> None:
    """Constant time: a match on the first candidate still compares the rest, so timing does
    not tell an attacker which candidate or how much of it was right."""
    calls: list[tuple[bytes, bytes]] = []
    real = hmac.compare_digest

    def counting(a: bytes, b: bytes) -> bool:
        calls.append((a, b))
        return real(a, b)

    monkeypatch.setattr(hmac, "compare_digest", counting)
    signed = header(NOW, stripe_sign(BODY, SECRET, NOW), "00" * 32, "11" * 32)
    verify(BODY, signed, [SECRET, "whsec_other"], now=NOW)
    assert len(calls) == 6
