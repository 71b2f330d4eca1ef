"""Faults against the whole running system, at the small scale of `make chaos`'s scenarios.

One stack for the module (its own PostgreSQL, moto behind a switchable proxy, the API and
worker processes); each test breaks one thing, repairs it, and then requires every accepted
order to be final exactly once, with one charge at most, its emails, and a clean
`python -m processor admin check`. Figures are printed for `-s` runs.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from uuid import uuid4

import pytest

from tests.reliability.chaos.audit import Outcome, audit
from tests.reliability.chaos.client import order_body, place_orders, submit
from tests.reliability.chaos.scenarios.database_restart import database_restart
from tests.reliability.chaos.scenarios.idempotency_storm import idempotency_storm
from tests.reliability.chaos.scenarios.poison_batch import poison_batch, poison_messages
from tests.reliability.chaos.scenarios.queue_outage import queue_outage
from tests.reliability.chaos.scenarios.worker_kill import worker_kill
from tests.reliability.chaos.stack import Stack


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    with Stack(Path(tmp_path_factory.mktemp("chaos"))) as running:
        running.start_worker()
        yield running


@pytest.fixture
def healthy(stack: Stack) -> Iterator[Stack]:
    """Every test starts with the system whole again (a worker running, nothing cut off)."""
    stack.proxy.up()
    stack.ensure_worker()
    yield stack


def _passed(outcome: Outcome) -> None:
    print(f"\n{outcome.name}: {outcome.figures} ({outcome.seconds} s)")
    assert outcome.violations == [], outcome.violations
    assert outcome.figures["lost"] == 0 and outcome.figures["doubled"] == 0
    assert outcome.figures["checker_findings"] == 0


def test_200_concurrent_creates_over_20_shared_keys_make_exactly_20_orders(healthy):
    outcome = idempotency_storm(healthy, requests=200, keys=20)
    _passed(outcome)
    assert outcome.figures["stored_orders"] == outcome.figures["expected_orders"] == 20
    assert outcome.figures["responses"] == {201: 200}


def test_a_database_restart_under_load_answers_503_then_recovers_losing_nothing(healthy):
    outcome = database_restart(healthy, before=10, after=10, outage_seconds=1.5)
    _passed(outcome)
    assert outcome.figures["answered_503"] > 0 and outcome.figures["GET /orders answers"]["503"] > 0
    assert outcome.figures["accepted"] == outcome.figures["tried"]


def test_orders_placed_while_the_queue_is_unreachable_complete_after_it_returns(healthy):
    outcome = queue_outage(healthy, in_flight=6, during=6, outage_seconds=1.5)
    _passed(outcome)
    assert outcome.figures["queue_messages_held_in_outbox"] == 6
    assert outcome.figures["final_statuses"] == {"COMPLETED": 12}


@pytest.mark.parametrize("phase", ["charging", "fulfilling"])
def test_a_worker_killed_mid_order_is_replaced_and_nothing_repeats(healthy, phase):
    outcome = worker_kill(healthy, phase)
    _passed(outcome)
    assert outcome.figures["charges"] == 1
    assert outcome.figures["emails"] == 5 and outcome.figures["email_repeats"] == 0


def test_poison_and_oversized_messages_go_to_the_dlq_and_the_batch_carries_on(healthy):
    outcome = poison_batch(healthy, good=3)
    _passed(outcome)
    assert outcome.figures["dead_lettered"] == len(poison_messages(real_order_id=""))
    assert outcome.figures["final_statuses"] == {"COMPLETED": 3}
    assert any("larger than" in reason for reason in outcome.figures["reasons"])


def test_the_audit_itself_reports_a_lost_and_a_doubled_order(healthy):
    """The scenarios' clean figures mean something: the audit they end with counts an order
    that was accepted but never stored, and a logical order stored twice."""
    outcome = Outcome("Sabotaged audit", "an unknown order id and a second order under one tag")
    give_up_at = time.monotonic() + 30
    accepted = place_orders(healthy.api_url, f"audit-{uuid4().hex[:8]}", 2, give_up_at)
    tag = next(iter(accepted))
    submit(healthy.api_url, order_body(tag), f"{tag}-another-key", give_up_at)
    accepted["never-stored"] = str(uuid4())
    audit(healthy, outcome, accepted)
    assert outcome.figures["lost"] == 1 and outcome.figures["doubled"] == 1
    assert any("missing" in v for v in outcome.violations), outcome.violations
    assert any("stored more than once" in v for v in outcome.violations), outcome.violations
