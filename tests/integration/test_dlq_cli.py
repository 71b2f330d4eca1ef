"""`python -m processor admin dlq list|show|redrive` against moto: inspect dead letters without
consuming them, and redrive all or chosen ones back to processing."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from processor import bootstrap
from processor.__main__ import main
from processor.adapters.aws import client
from processor.entrypoints.consumer import QueueMessage, handle_batch
from processor.orders import service as order_service
from tests.helpers import (
    consume_once,
    order_request,
    queue_depth,
    receive_all,
    status_of,
)
from tests.unit.fakes import FakeProvider

REPO = Path(__file__).resolve().parents[2]


pytestmark = pytest.mark.usefixtures("invariants_hold")


class ApprovingProvider(FakeProvider):
    """The payment provider once it has recovered."""


def _dead_letter_an_order(system: dict[str, Any]) -> str:
    """An order whose provider stays unavailable until SQS gives up (maxReceiveCount 3)."""
    created, _ = order_service.create_order(order_request("ada+unavailable@example.com"))
    order_id = created["order_id"]
    queue = system["ORDER_QUEUE_URL"]
    for _ in range(3):
        (message,) = receive_all(queue)
        assert handle_batch([QueueMessage.from_sqs(message)]).failed  # backoff 0: visible again
    assert receive_all(queue) == []  # this receive moves it to the DLQ
    return order_id


def _letters(capsys: pytest.CaptureFixture[str]) -> list[dict[str, Any]]:
    assert main(["admin", "--json", "dlq", "list"]) == 0
    return json.loads(capsys.readouterr().out.strip().splitlines()[-1])


def test_list_show_and_redrive_bring_a_dead_lettered_order_to_completion(system, configure, capsys):
    configure(PAYMENT_RETRY_ATTEMPTS="1")
    order_id = _dead_letter_an_order(system)
    dlq = system["ORDER_DLQ_URL"]

    assert main(["admin", "dlq", "list"]) == 0
    listed = capsys.readouterr().out
    assert "max receives exceeded" in listed
    (letter,) = _letters(capsys)
    assert letter["message_id"] in listed
    assert letter["receive_count"] >= 3
    assert queue_depth(dlq) == (1, 0)  # listing consumed nothing and hid nothing

    assert main(["admin", "dlq", "show", letter["message_id"]]) == 0
    shown = capsys.readouterr().out
    assert order_id in shown and "max receives exceeded" in shown
    assert main(["admin", "dlq", "show", "no-such-id"]) == 1
    assert "no message no-such-id in the DLQ" in capsys.readouterr().err

    bootstrap.set_payment_provider(ApprovingProvider())  # the provider is back
    assert main(["admin", "dlq", "redrive"]) == 0
    assert "redriven  1" in capsys.readouterr().out
    assert queue_depth(dlq) == (0, 0)
    assert len(consume_once(system["ORDER_QUEUE_URL"]).done) == 1
    assert status_of(system["db"], order_id) == "COMPLETED"


def test_redrive_moves_only_the_chosen_message_even_behind_a_full_batch(system, capsys):
    dlq = system["ORDER_DLQ_URL"]
    sent = [
        client("sqs").send_message(QueueUrl=dlq, MessageBody=f"poison {n}")["MessageId"]
        for n in range(12)
    ]
    assert main(["admin", "dlq", "redrive", sent[-1]]) == 0
    assert "redriven  1" in capsys.readouterr().out
    assert [m["Body"] for m in receive_all(system["ORDER_QUEUE_URL"])] == ["poison 11"]
    assert queue_depth(dlq) == (11, 0)  # the others are back in view at once
    assert sorted(letter["message_id"] for letter in _letters(capsys)) == sorted(sent[:-1])


def test_dlq_list_reports_the_reason_a_poison_message_was_dead_lettered(system, capsys):
    queue = system["ORDER_QUEUE_URL"]
    client("sqs").send_message(QueueUrl=queue, MessageBody="{not json")
    assert handle_batch([QueueMessage.from_sqs(m) for m in receive_all(queue)]).done
    (letter,) = _letters(capsys)
    assert letter["body"] == "{not json"
    assert letter["reason"].startswith("not an order message")
    assert letter["receive_count"] == 1


def test_dlq_commands_need_both_queue_urls(system, configure, capsys):
    configure(ORDER_DLQ_URL="")
    assert main(["admin", "dlq", "list"]) == 2
    assert "ORDER_DLQ_URL" in capsys.readouterr().err


def test_dlq_list_runs_as_a_command_line_program(system):
    client("sqs").send_message(QueueUrl=system["ORDER_DLQ_URL"], MessageBody='{"order_id": 1}')
    result = subprocess.run(
        [sys.executable, "-m", "processor", "admin", "dlq", "list"],
        cwd=REPO,
        env={**os.environ, "METRICS_DISABLED": "1"},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert '{"order_id": 1}' in result.stdout
    assert queue_depth(system["ORDER_DLQ_URL"]) == (1, 0)
