"""`python -m processor admin reconcile` as operators and cron run it: exit 0 clean, 1 with
findings (each printed with what to do), 2 when the database cannot be read; `--json` for
scripts; every run recorded."""

from __future__ import annotations

import json
from typing import Any

from processor.__main__ import main
from processor.orders import service as order_service
from processor.processing import service as processing
from tests.helpers import count, order_request


def _dispute(db: Any, order_id: str) -> None:
    """A dispute as the webhook stores it (tests/integration/test_stripe_webhook_events.py
    sends the real event)."""
    with db.cursor() as cur:
        cur.execute("INSERT INTO provider_events (event_id, provider, event_type, occurred_at,"
                    " order_id, outcome, detail) VALUES ('evt_dp', 'stripe',"
                    " 'charge.dispute.created', now(), %s, 'disagreement', 'dispute dp_1')",
                    (order_id,))


def test_a_clean_store_exits_0_and_the_run_is_recorded(system: dict[str, Any], capsys: Any
                                                       ) -> None:
    created, _ = order_service.create_order(order_request())
    processing.process_order(order_service.parse_order_id(created["order_id"]))
    capsys.readouterr()  # what processing logged
    assert main(["admin", "reconcile", "--json", "--no-queues"]) == 0
    report = json.loads(capsys.readouterr().out)  # the report alone: logs go to stderr
    assert (report["ok"], report["provider"], report["findings"]) == (True, "simulator", [])
    assert count(system["db"], "SELECT count(*) FROM reconciler_runs") == 1


def test_findings_exit_1_and_say_what_to_do(system: dict[str, Any], capsys: Any) -> None:
    created, _ = order_service.create_order(order_request())
    processing.process_order(order_service.parse_order_id(created["order_id"]))
    _dispute(system["db"], created["order_id"])
    assert main(["admin", "reconcile", "--no-queues"]) == 1
    text = capsys.readouterr().out
    assert f"disputed_payment {created['order_id']}: dispute dp_1" in text
    assert "-> a chargeback was opened" in text
    assert main(["admin", "reconcile", "--json", "--no-queues"]) == 1
    (finding,) = json.loads(capsys.readouterr().out.strip().splitlines()[-1])["findings"]
    assert finding["kind"] == "disputed_payment"
    assert finding["action"].startswith("a chargeback was opened")


def test_an_unreachable_database_exits_2(system: dict[str, Any], monkeypatch: Any,
                                         capsys: Any) -> None:
    from db.connection import reset_dsn

    monkeypatch.setenv("DATABASE_URL", "postgresql://nobody@127.0.0.1:1/none?connect_timeout=1")
    reset_dsn()
    try:
        assert main(["admin", "reconcile", "--no-queues"]) == 2
    finally:
        monkeypatch.undo()
        reset_dsn()
    assert "cannot read the database" in capsys.readouterr().err
