"""The metric catalogue (processor.metrics) against the code that emits: every `emit_metric`
call names a catalogued metric with its declared dimension, and every catalogued metric is
emitted somewhere (a graph or alarm on a metric nobody writes would watch nothing)."""

from __future__ import annotations

import ast
from pathlib import Path

from processor import metrics

REPO = Path(__file__).resolve().parents[2]


def _emit_calls() -> list[tuple[str, ast.Call]]:
    calls = []
    for path in (REPO / "processor").rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if (isinstance(node, ast.Call) and isinstance(node.func, ast.Name)
                    and node.func.id == "emit_metric"):
                calls.append((f"{path.relative_to(REPO)}:{node.lineno}", node))
    return calls


def test_every_emit_names_a_catalogued_metric_with_its_declared_dimension():
    catalogued = {name: getattr(metrics, name) for name in dir(metrics)
                  if getattr(metrics, name) in metrics.CATALOGUE}
    calls = _emit_calls()
    assert calls
    for where, call in calls:
        first = call.args[0]
        assert isinstance(first, ast.Attribute) and isinstance(first.value, ast.Name), where
        assert first.value.id == "metrics" and first.attr in catalogued, where
        metric = catalogued[first.attr]
        expected = set() if metric.dimension is None else {metric.dimension}
        assert {k.arg for k in call.keywords} == expected, where


def test_every_catalogued_metric_is_emitted_somewhere():
    emitted = {call.args[0].attr for _, call in _emit_calls()
               if isinstance(call.args[0], ast.Attribute)}
    assert {getattr(metrics, name) for name in emitted} == set(metrics.CATALOGUE)


def test_catalogued_names_are_unique_and_dimensioned_metrics_list_their_values():
    names = [m.name for m in metrics.CATALOGUE]
    assert len(names) == len(set(names))
    for metric in metrics.CATALOGUE:
        assert (metric.dimension is None) == (not metric.values), metric.name
