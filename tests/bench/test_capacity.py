"""CAPACITY.md is generated from recorded benchmark figures, and the committed one is current."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from bench import capacity
from bench.env import BenchEnv
from bench.prices import assume
from bench.runner import run_benchmarks
from bench.sizes import SMOKE
from processor.devstack.local import create_aws_resources

REPO = Path(__file__).resolve().parents[2]
FIGURES = {
    "command": "python -m bench",
    "machine": {"Run at": "2026-12-01 12:00 UTC", "Code": "abc1234", "CPU": "test",
                "PostgreSQL": "18"},
    "sections": {
        "create": {"handler_seconds": 0.002, "db_seconds": 0.001, "transactions": 1,
                   "round_trips": 1, "aws_calls": {"send_message_batch": 1}, "log_bytes": 500},
        "process": {"process_seconds": 0.008, "db_seconds": 0.005, "transactions": 6,
                    "statements": 12, "round_trips": 24,
                    "aws_calls": {"publish": 5, "send_email": 5}, "log_bytes": 1800},
    },
}


@pytest.fixture
def figures(tmp_path: Path) -> Path:
    path = tmp_path / "BENCHMARKS.json"
    path.write_text(json.dumps(FIGURES))
    return path


def test_the_committed_capacity_file_is_what_the_generator_writes() -> None:
    assert (REPO / "CAPACITY.md").read_text() == capacity.generate(), (
        "CAPACITY.md is stale: run `make capacity`")


def test_the_model_turns_recorded_figures_into_rates_and_limits(figures: Path) -> None:
    order = capacity.PerOrder.load(figures)
    load = capacity.Load.at(100, order, capacity.DEFAULTS)
    api = 0.002 + 1 * assume("db_round_trip_s") + 1 * assume("aws_call_s")
    assert load.api_concurrency == pytest.approx(100 * api)
    assert (load.sns_rps, load.ses_rps) == (500, 500)
    assert load.sqs_rps == pytest.approx(100 + 2 * 100 / capacity.DEFAULTS.sqs_batch_size)
    assert load.db_cores == pytest.approx(100 * 0.006)
    text = capacity.render(order, [])
    # SES in a new account sends 14 emails/s; five emails per order make that 2.8 orders/s.
    assert "5 emails per order turn into 2.8 orders/s" in text
    assert "| SES | 5 emails | $500.00 |" in text
    first, changes = capacity.advice(capacity.Load.at(10, order, capacity.DEFAULTS), order,
                                     capacity.DEFAULTS)
    assert "SES" in first
    assert any("SES sending rate" in change for change in changes)


def test_an_unknown_aws_operation_stops_the_generator(figures: Path) -> None:
    broken = json.loads(figures.read_text())
    broken["sections"]["process"]["aws_calls"]["put_events"] = 1
    figures.write_text(json.dumps(broken))
    with pytest.raises(capacity.CapacityError, match="put_events"):
        capacity.PerOrder.load(figures)


def test_every_stack_file_gets_an_idle_cost_from_the_resources_it_declares(
    figures: Path,
) -> None:
    root = figures.parent
    shutil.copy(REPO / "Pulumi.dev.yaml", root / "Pulumi.dev.yaml")
    (root / "Pulumi.big.yaml").write_text(
        "config:\n  orderflow:sender_email: orders@example.com\n"
        "  orderflow:processor: fargate\n  orderflow:db_engine: aurora-serverless\n"
        "  orderflow:rds_proxy_enabled: true\n  aws:region: us-east-1\n")
    text = capacity.generate(root)
    assert "### Pulumi.dev.yaml (`processor: lambda`, `db_engine: rds`)" in text
    assert "| Interface endpoints: 4 x 2 zones | $58.40 |" in text
    big = text.split("### Pulumi.big.yaml", 1)[1]
    assert "| Interface endpoints: 7 x 2 zones | $102.20 |" in big  # + ECR API/DKR, logs
    assert "| Aurora Serverless v2: 1 x 0.5 ACU minimum, storage | $43.90 |" in big
    assert "| RDS Proxy (8 ACUs, its minimum for Serverless v2) | $87.60 |" in big


def test_bench_records_the_figures_capacity_reads(
    database_url: str, fresh_moto: str, tmp_path: Path,
) -> None:
    env = BenchEnv(database_url, fresh_moto,
                   resources=create_aws_resources("orders@orderflow.test"))
    run_benchmarks(env, SMOKE, tmp_path / "BENCHMARKS.md", ["create", "process"], "pytest")
    sections = json.loads((tmp_path / "BENCHMARKS.json").read_text())["sections"]
    assert sections["create"]["aws_calls"] == {"send_message_batch": 1}
    assert sections["process"]["aws_calls"] == {"publish_batch": 1, "send_email": 5}
    # 8: status read, PROCESSING, authorise intent and answer, capture intent and answer,
    # COMPLETED, the notification relay (no provider call inside a transaction).
    assert (sections["create"]["round_trips"], sections["process"]["transactions"]) == (1, 8)
    assert sections["create"]["log_bytes"] > 0 and sections["process"]["db_seconds"] > 0
    order = capacity.PerOrder.load(tmp_path / "BENCHMARKS.json")
    assert order.calls == {"sqs": 1, "sns": 1, "ses": 5}
