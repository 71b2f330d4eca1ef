"""`python -m processor admin ...` against the local stack (real PostgreSQL + moto)."""

from __future__ import annotations

import json

from processor.__main__ import main
from processor.adapters.aws import client
from processor.orders import service as order_service
from processor.processing import service as processing
from tests.helpers import order_request, receive_all


def _json(capsys) -> object:
    return json.loads(capsys.readouterr().out.strip().splitlines()[-1])


def test_order_shows_history_payment_and_outbox(system, capsys):
    created, _ = order_service.create_order(order_request())
    processing.process_order(order_service.parse_order_id(created["order_id"]))
    assert main(["admin", "--json", "order", created["order_id"]]) == 0
    shown = _json(capsys)
    assert shown["status"] == "COMPLETED"
    assert shown["payment"]["outcome"] == "CHARGED"
    assert len(shown["status_history"]) == 5
    assert {e["status"] for e in shown["outbox"] if e["kind"] == "notification"} == {
        "PENDING", "PROCESSING", "PAYMENT_CONFIRMED", "FULFILLED", "COMPLETED",
    }


def test_stuck_lists_unfinished_orders_and_exits_1(system, capsys):
    created, _ = order_service.create_order(order_request())
    assert main(["admin", "--json", "stuck", "--older-than-seconds", "0"]) == 1
    assert [str(s["order_id"]) for s in _json(capsys)] == [created["order_id"]]


def test_stuck_is_empty_when_everything_is_final(system, capsys):
    created, _ = order_service.create_order(order_request())
    processing.process_order(order_service.parse_order_id(created["order_id"]))
    assert main(["admin", "--json", "stuck", "--older-than-seconds", "0"]) == 0
    assert _json(capsys) == []


def test_outbox_replay_sends_what_the_relay_could_not(system, configure, capsys):
    configure(ORDER_QUEUE_URL="http://127.0.0.1:9/000000000000/missing")
    order_service.create_order(order_request())
    assert main(["admin", "--json", "outbox"]) == 0
    assert _json(capsys)["unsent"] == 2
    configure(ORDER_QUEUE_URL=system["ORDER_QUEUE_URL"])
    assert main(["admin", "--json", "outbox", "--replay"]) == 0
    assert _json(capsys)["failed"] == 0
    assert main(["admin", "--json", "outbox"]) == 0
    assert _json(capsys)["unsent"] == 0


def test_outbox_replay_leaves_a_queue_message_the_api_sent_to_the_processor(system, capsys):
    order_service.create_order(order_request())
    assert main(["admin", "--json", "outbox", "--replay"]) == 0
    assert _json(capsys) == {"sent": 1, "failed": 0}  # the PENDING email only
    assert len(receive_all(system["ORDER_QUEUE_URL"])) == 1


def test_notifications_lists_status_changes_oldest_first(system, capsys):
    created, _ = order_service.create_order(order_request())
    processing.process_order(order_service.parse_order_id(created["order_id"]))
    assert main(["admin", "--json", "notifications", "--limit", "10"]) == 0
    assert [n["status"] for n in _json(capsys)] == [
        "PENDING", "PROCESSING", "PAYMENT_CONFIRMED", "FULFILLED", "COMPLETED",
    ]


def test_dlq_list_show_and_redrive(system, capsys):
    sqs = client("sqs")
    sqs.send_message(QueueUrl=system["ORDER_DLQ_URL"], MessageBody='{"order_id": "x"}')
    assert main(["admin", "--json", "dlq", "list"]) == 0
    letters = _json(capsys)
    assert len(letters) == 1
    message_id = letters[0]["message_id"]
    assert main(["admin", "--json", "dlq", "show", message_id]) == 0
    assert _json(capsys)["body"] == '{"order_id": "x"}'
    assert main(["admin", "--json", "dlq", "redrive"]) == 0
    assert _json(capsys) == {"redriven": 1}
    moved = sqs.receive_message(QueueUrl=system["ORDER_QUEUE_URL"], MaxNumberOfMessages=10)
    assert [m["Body"] for m in moved.get("Messages", [])] == ['{"order_id": "x"}']


def test_emails_shows_what_ses_recorded(system, capsys):
    created, _ = order_service.create_order(order_request())
    processing.process_order(order_service.parse_order_id(created["order_id"]))
    assert main(["admin", "--json", "emails", "--endpoint", system["AWS_ENDPOINT_URL"]]) == 0
    emails = _json(capsys)
    assert len(emails) == 5
    assert all(e["to"] == ["ada@example.com"] for e in emails)
    assert any("complete" in e["subject"].lower() for e in emails)
