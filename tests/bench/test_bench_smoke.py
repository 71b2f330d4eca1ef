"""The benchmark harness works: every benchmark runs on a tiny workload and is reported.

Benchmarks are not tests; this only proves `python -m bench` would produce BENCHMARKS.md. It
asserts nothing about the figures themselves.
"""

from __future__ import annotations

from pathlib import Path

from bench.env import BenchEnv
from bench.runner import NAMES, run_benchmarks
from bench.sizes import SMOKE
from processor.devstack.local import create_aws_resources


def test_every_benchmark_runs_on_a_tiny_workload_and_is_written_to_the_report(
    database_url: str, fresh_moto: str, tmp_path: Path
) -> None:
    env = BenchEnv(
        database_url, fresh_moto, resources=create_aws_resources("orders@orderflow.test")
    )
    output = tmp_path / "BENCHMARKS.md"

    sections = run_benchmarks(env, SMOKE, output, command="pytest smoke")

    assert [section.key for section in sections] == list(NAMES)
    assert [section.error for section in sections if section.error] == []
    report = output.read_text()
    assert "| Benchmark | Figure | Result | Baseline | Ratio | Target | Pass |" in report
    assert "## Machine" in report
    for section in sections:
        assert section.figures, section.title
        assert all(figure.name in report for figure in section.figures)
