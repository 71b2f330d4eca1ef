"""Settings read from the environment: the customer email statuses (SES bills per email)."""

from __future__ import annotations

import pytest

from processor.config import Settings
from processor.domain.model import Status


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        pytest.param(None, {s.value for s in Status}, id="unset: every status"),
        pytest.param("", set(), id="empty: none"),
        pytest.param("none", set(), id="none"),
        pytest.param(" completed ,PAYMENT_FAILED,", {"COMPLETED", "PAYMENT_FAILED"}, id="list"),
    ],
)
def test_customer_email_statuses(monkeypatch, value, expected):
    if value is None:
        monkeypatch.delenv("CUSTOMER_EMAIL_STATUSES", raising=False)
    else:
        monkeypatch.setenv("CUSTOMER_EMAIL_STATUSES", value)
    assert Settings.from_env().customer_email_statuses == expected


def test_an_unknown_customer_email_status_is_refused_at_start(monkeypatch):
    monkeypatch.setenv("CUSTOMER_EMAIL_STATUSES", "COMPLETED,SHIPPED")
    with pytest.raises(ValueError, match="SHIPPED"):
        Settings.from_env()
