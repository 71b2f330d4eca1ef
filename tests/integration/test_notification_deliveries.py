"""A notification's two deliveries, the operator event (SNS) and the customer email (SES), are
recorded apart: a refused email never publishes its event again; SES's permanent refusals are
given up at once, its transient errors backed off and given up at a cap, and what is given up
is counted and shown; each record is marked the moment SES accepted its email, so a crash
repeats at most the email in flight. SES and SNS refuse over the wire (`tests.helpers.refusing`).
"""

from __future__ import annotations

import json
from typing import Any
from uuid import UUID

import boto3
import pytest
from botocore.config import Config

from processor.__main__ import main
from processor.adapters import aws
from processor.adapters.aws import client
from processor.ops import admin
from processor.orders import service as order_service
from processor.outbox import relay as outbox
from processor.processing import service as processing
from tests.helpers import (
    LIFECYCLE,
    emailed_statuses,
    order_request,
    refusing,
    rows,
    subscribe_tap,
    tapped_events,
)

pytestmark = pytest.mark.usefixtures("invariants_hold")
RECIPIENT = "private.person@example.com"
SANDBOX_REFUSAL = (
    "Email address is not verified. The following identities failed the check in region"
    f" US-EAST-1: {RECIPIENT}"
)


def _given_up_metrics(out: str) -> list[float]:
    lines = [json.loads(line) for line in out.splitlines() if line.startswith('{"_aws"')]
    return [m["NotificationsGivenUp"] for m in lines if "NotificationsGivenUp" in m]


def _record(db: Any, status: str) -> dict[str, Any]:
    columns = "attempts, published_at, given_up_at, event_sent_at, next_attempt_at, last_error"
    (row,) = rows(
        db, f"SELECT {columns} FROM outbox WHERE kind = 'notification' AND status = %s", status
    )
    return dict(zip(columns.split(", "), row, strict=True))


def test_a_refused_email_is_given_up_at_once_and_its_event_published_only_once(
    system, configure, capsys, monkeypatch
):
    monkeypatch.delenv("METRICS_DISABLED", raising=False)
    configure(OUTBOX_GRACE_SECONDS="0")
    events = subscribe_tap(system["NOTIFICATION_TOPIC_ARN"], "tap-refused")
    with refusing("ses", "MessageRejected", SANDBOX_REFUSAL) as calls:
        order, _ = order_service.create_order(order_request(RECIPIENT))
        for _ in range(3):
            outbox.sweep()

    assert len(calls) == 1  # one SendEmail, never retried
    assert [status for status, _ in tapped_events(events)] == ["PENDING"]
    record = _record(system["db"], "PENDING")
    assert record["given_up_at"] is not None and record["published_at"] is not None
    assert record["last_error"].startswith("ses: ") and "MessageRejected" in record["last_error"]
    assert RECIPIENT not in record["last_error"] and "p***@example.com" in record["last_error"]
    assert _given_up_metrics(capsys.readouterr().out) == [1]
    shown = admin.outbox_status()
    assert shown["given_up"] == 1
    assert shown["given_up_records"][0]["last_error"] == record["last_error"]
    (listed,) = [e for e in admin.show_order(UUID(order["order_id"]))["outbox"] if e["given_up_at"]]
    assert listed["status"] == "PENDING" and listed["event_sent_at"] is not None

    # The address is verified now: the operator retries the given-up email, the event stays.
    assert main(["admin", "outbox", "--retry-given-up"]) == 0
    assert "retrying  1" in capsys.readouterr().out
    assert outbox.sweep().sent == 1
    assert emailed_statuses(system["AWS_ENDPOINT_URL"], order["order_id"]) == ["PENDING"]
    assert [status for status, _ in tapped_events(events)] == []  # no second event


def test_a_transient_ses_error_backs_off_then_is_given_up_at_the_attempt_cap(system, configure):
    configure(OUTBOX_GRACE_SECONDS="0", OUTBOX_RETRY_BASE_SECONDS="200")
    events = subscribe_tap(system["NOTIFICATION_TOPIC_ARN"], "tap-throttled")
    with refusing("ses", "Throttling", "Maximum sending rate exceeded.") as calls:
        order_service.create_order(order_request(RECIPIENT))
        assert outbox.sweep().failed == 1
        backed_off = _record(system["db"], "PENDING")
        assert outbox.sweep() == outbox.RelayResult(0, 0)  # still backing off
        assert len(calls) == 1

        configure(OUTBOX_RETRY_BASE_SECONDS="0", OUTBOX_MAX_ATTEMPTS="3")
        with system["db"].cursor() as cur:  # 200 s later
            cur.execute("UPDATE outbox SET next_attempt_at = now() WHERE kind = 'notification'")
        for _ in range(4):
            outbox.sweep()

    assert backed_off["published_at"] is None and backed_off["given_up_at"] is None
    waited = backed_off["next_attempt_at"] - backed_off["event_sent_at"]
    assert 200 <= waited.total_seconds() < 210  # the base delay after the first failure
    assert len(calls) == 3
    record = _record(system["db"], "PENDING")
    assert record["attempts"] == 3 and record["given_up_at"] is not None
    assert [status for status, _ in tapped_events(events)] == ["PENDING"]


def test_an_unreachable_ses_only_backs_off_and_the_email_goes_when_it_is_back(system, configure):
    configure(OUTBOX_GRACE_SECONDS="0", OUTBOX_MAX_ATTEMPTS="1")
    body, _ = order_service.create_order(order_request(RECIPIENT))
    once = Config(connect_timeout=1, retries={"max_attempts": 1})
    with pytest.MonkeyPatch.context() as patch:  # nothing listens on port 9
        down = boto3.client("ses", endpoint_url="http://127.0.0.1:9", config=once)
        patch.setitem(aws._clients, "ses", down)
        for _ in range(3):
            assert outbox.sweep().failed == 1
    assert _record(system["db"], "PENDING")["given_up_at"] is None
    assert outbox.sweep().sent == 1
    assert emailed_statuses(system["AWS_ENDPOINT_URL"], body["order_id"]) == ["PENDING"]


class Crash(BaseException):
    """The relay's process dies here (nothing in the relay catches a BaseException)."""


def test_a_crash_after_ses_accepted_an_email_repeats_only_that_email(system, configure):
    configure(OUTBOX_GRACE_SECONDS="0")
    body, _ = order_service.create_order(order_request())
    with refusing("ses", "ServiceUnavailable", "try later"):
        assert processing.process_order(UUID(body["order_id"])) == "COMPLETED"
    accepted = []

    def die_after_third(**_: Any) -> None:
        accepted.append(1)
        if len(accepted) == 3:
            raise Crash

    events = client("ses").meta.events
    events.register("after-call.ses.SendEmail", die_after_third, "crash-after-third")
    try:
        with pytest.raises(Crash):
            outbox.sweep()
    finally:
        events.unregister("after-call.ses.SendEmail", unique_id="crash-after-third")
    assert outbox.sweep() == outbox.RelayResult(0, 0)  # the dead relay's lease still holds
    with system["db"].cursor() as cur:  # a minute later, the lease ends
        cur.execute("UPDATE outbox SET next_attempt_at = now() WHERE published_at IS NULL")
    assert outbox.sweep().sent == 3

    emailed = emailed_statuses(system["AWS_ENDPOINT_URL"], body["order_id"])
    assert sorted(emailed) == sorted([*LIFECYCLE, LIFECYCLE[2]])  # the third, once more


def test_an_sns_refusal_backs_the_record_off_without_emailing(system, configure):
    configure(OUTBOX_GRACE_SECONDS="0")
    body, _ = order_service.create_order(order_request(RECIPIENT))
    with refusing("sns", "InvalidParameter", f"Invalid parameter: {RECIPIENT}"):
        assert outbox.sweep().failed == 1
    record = _record(system["db"], "PENDING")
    assert record["event_sent_at"] is None and record["given_up_at"] is None
    assert RECIPIENT not in record["last_error"] and "InvalidParameter" in record["last_error"]
    assert emailed_statuses(system["AWS_ENDPOINT_URL"], body["order_id"]) == []
    assert outbox.sweep().sent == 1
    assert emailed_statuses(system["AWS_ENDPOINT_URL"], body["order_id"]) == ["PENDING"]
