"""`python -m processor admin check`: silent on healthy data, and each rule fires on the
corruption it exists for (so a clean report after a chaos run means something)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from uuid import UUID

import psycopg2
import pytest

from db.checks import Snapshot
from processor.adapters.aws import client
from processor.domain.model import Status
from processor.ops.invariants import (
    PAYMENT_STATUSES,
    _check_database,
    check,
    format_report,
    valid_paths,
)
from processor.orders import service as order_service
from processor.outbox import relay as outbox
from processor.processing import service as processing
from tests.helpers import order_request

REPO = Path(__file__).resolve().parents[2]


def _completed_order(email: str = "ada@example.com") -> UUID:
    order_id = UUID(order_service.create_order(order_request(email))[0]["order_id"])
    processing.process_order(order_id)
    outbox.publish(order_id=order_id)
    return order_id


@pytest.fixture
def two_orders(system: dict[str, Any]) -> tuple[UUID, UUID]:
    """A completed order and a declined one, with every outbox record sent."""
    return _completed_order(), _completed_order("bob+decline@example.com")


@pytest.fixture
def scratch(database_url: str) -> Iterator[Any]:
    """A cursor in a transaction that is rolled back: corrupt freely, check, forget."""
    conn = psycopg2.connect(database_url)
    try:
        with conn.cursor() as cur:
            yield cur
    finally:
        conn.rollback()
        conn.close()


def _kinds(cur: Any, deadline: float = 300) -> dict[str, list[str | None]]:
    report = _check_database(Snapshot.on(cur), deadline, 100)
    found: dict[str, list[str | None]] = {}
    for finding in report.findings:
        found.setdefault(finding.kind, []).append(finding.order_id)
    return found


def test_valid_paths_are_every_prefix_of_the_lifecycle_table():
    paths = valid_paths()
    assert "PENDING|PENDING" in paths
    assert "PENDING>PROCESSING>PAYMENT_CONFIRMED>FULFILLED>COMPLETED|COMPLETED" in paths
    assert "PENDING>CANCELLED|CANCELLED" in paths
    assert "PENDING>PROCESSING>CANCELLED|CANCELLED" in paths
    assert "PENDING>PROCESSING>PAYMENT_FAILED|PAYMENT_FAILED" in paths
    assert "PENDING>PAYMENT_CONFIRMED|PAYMENT_CONFIRMED" not in paths
    assert "PENDING>PROCESSING>PAYMENT_CONFIRMED>CANCELLED|CANCELLED" in paths  # voided
    assert "PENDING>PROCESSING>PAYMENT_CONFIRMED>FULFILLED>COMPLETED>REFUNDED|REFUNDED" in paths
    assert len(paths) == len(set(paths)) == 12
    assert set(PAYMENT_STATUSES) == set(Status)


def test_healthy_data_has_no_findings_and_the_command_exits_0(two_orders, system):
    report = check(deadline_seconds=0)
    assert report.findings == [], format_report(report)
    assert report.counts["orders"] == 2 and report.counts["unsent_outbox"] == 0
    assert report.queues["dlq"] == {"visible": 0, "in_flight": 0, "delayed": 0}
    done = _cli("--deadline-seconds", "0")
    assert done.returncode == 0, done.stdout + done.stderr
    assert json.loads(done.stdout)["ok"] is True


def test_an_unfinished_order_is_reported_only_after_the_deadline(system):
    order_id = order_service.create_order(order_request())[0]["order_id"]
    outbox.publish(order_id=UUID(order_id))
    assert check(deadline_seconds=300).ok
    done = _cli("--deadline-seconds", "0")
    assert done.returncode == 1
    findings = json.loads(done.stdout)["findings"]
    assert [(f["kind"], f["order_id"]) for f in findings] == [("stale_order", order_id)]
    assert "stale_order" in _cli("--deadline-seconds", "0", as_json=False).stdout


def test_each_rule_fires_on_the_corruption_it_guards_against(two_orders, scratch):
    done, declined = (str(o) for o in two_orders)
    cur = scratch
    assert _kinds(cur) == {}

    def corrupt(sql: str, *params: Any) -> dict[str, list[str | None]]:
        cur.execute("SAVEPOINT s")
        cur.execute(sql, params)
        found = _kinds(cur)
        cur.execute("ROLLBACK TO SAVEPOINT s")
        return found

    assert corrupt(
        "DELETE FROM order_status_history WHERE order_id = %s AND status = 'PROCESSING'", done
    ) == {"invalid_history": [done], "orphan_notification": [done]}
    assert corrupt("UPDATE orders SET status = 'FULFILLED' WHERE order_id = %s", done) == {
        "invalid_history": [done]
    }
    assert corrupt(
        "DELETE FROM outbox WHERE order_id = %s AND kind = 'notification' AND status = 'FULFILLED'",
        done,
    ) == {"missing_notification": [done]}
    assert corrupt("DELETE FROM outbox WHERE order_id = %s AND kind = 'order'", done) == {
        "unqueued_order": [done]
    }
    assert corrupt(
        "UPDATE outbox SET published_at = NULL, created_at = now() - interval '1 hour'"
        " WHERE order_id = %s AND status = 'COMPLETED'",
        done,
    ) == {"unsent_outbox": [done]}
    assert corrupt(
        "UPDATE orders SET total_amount = total_amount + 0.01 WHERE order_id = %s", done
    ) == {"total_mismatch": [done], "payment_mismatch": [done]}
    assert corrupt("DELETE FROM order_items WHERE order_id = %s", done) == {
        "total_mismatch": [done]
    }
    assert corrupt("DELETE FROM payments WHERE order_id = %s", done) == {"payment_mismatch": [done]}
    assert corrupt("UPDATE payments SET status = 'CAPTURED' WHERE order_id = %s", declined) == {
        "payment_mismatch": [declined]
    }
    assert corrupt(
        "ALTER TABLE outbox DROP CONSTRAINT outbox_kind_order_id_status_key;"
        " INSERT INTO outbox (kind, order_id, status, payload, published_at)"
        " SELECT kind, order_id, status, payload, now() FROM outbox"
        " WHERE order_id = %s AND status = 'COMPLETED'",
        done,
    ) == {"duplicate_outbox": [done]}


def test_messages_in_the_dlq_are_a_finding(two_orders, system):
    client("sqs").send_message(QueueUrl=system["ORDER_DLQ_URL"], MessageBody="{}")
    report = check(deadline_seconds=300)
    assert [f.kind for f in report.findings] == ["dead_letters"]
    assert "1 message(s) in the DLQ" in format_report(report)


def test_an_unreachable_database_exits_2_not_1(tmp_path):
    done = _cli(env={"DATABASE_URL": f"postgresql://nobody@/none?host={tmp_path}"})
    assert done.returncode == 2
    assert "cannot read the database" in done.stderr and done.stdout == ""


def _cli(
    *args: str, as_json: bool = True, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    argv = [sys.executable, "-m", "processor", "admin", "check", *args]
    return subprocess.run(
        [*argv, "--json"] if as_json else argv,
        cwd=REPO,
        env={**os.environ, **(env or {})},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
