"""The operations dashboard and the alarms on the app's own (EMF) metrics.

The catalogue (processor.metrics) is what the app emits; every metric in it must be graphed
with each dimension set it is emitted with, and alarmed where the catalogue says so. What
`processor.observability.emit_metric` really writes under the stack's environment is checked
against the dashboard's lines: same namespace, same name, same dimension set and values.
"""

from __future__ import annotations

import json
from typing import Any

import pytest

from orderflow_mocks.harness import Deployment
from processor import metrics, observability

DASHBOARD = "aws:cloudwatch/dashboard:Dashboard"
NAMESPACE = "orderflow/test"
SERVICE = {"service": "orderflow"}
Line = tuple[str, str, dict[str, str], dict[str, Any]]


def _catalogued() -> set[tuple[str, tuple[tuple[str, str], ...]]]:
    """(name, dimensions besides `service`) of every metric the app emits."""
    return {(metric.name, tuple(sorted(dims.items())))
            for metric in metrics.CATALOGUE for dims in metric.dimension_sets()}


def _body(stack: Deployment) -> dict[str, Any]:
    (dashboard,) = stack.of_type(DASHBOARD)
    return json.loads(dashboard.inputs["dashboardBody"])


def _lines(body: dict[str, Any]) -> list[Line]:
    """Every metric line as (namespace, name, dimensions, options)."""
    lines: list[Line] = []
    for widget in body["widgets"]:
        if widget["type"] != "metric":
            continue
        for namespace, name, *rest in widget["properties"]["metrics"]:
            *dims, options = rest
            lines.append((namespace, name, dict(zip(dims[::2], dims[1::2], strict=True)),
                          options))
    return lines


def _alarms(stack: Deployment) -> dict[str, Any]:
    return {a.name.removeprefix("alarm-"): a
            for a in stack.of_type("aws:cloudwatch/metricAlarm:MetricAlarm")
            if a.name.startswith("alarm-")}


def test_dashboard_exists_in_both_modes_named_in_the_outputs(any_stack: Deployment) -> None:
    (dashboard,) = any_stack.of_type(DASHBOARD)
    assert dashboard.inputs["dashboardName"] == any_stack.outputs["dashboard_name"]
    text = dashboard.inputs["dashboardBody"]
    body = json.loads(text)  # valid JSON, Outputs resolved
    assert body["widgets"]
    for name in (NAMESPACE, "orderflow-test-orders", "orderflow-test-orders-dlq"):
        assert f'"{name}"' in text


def test_dashboard_graphs_every_catalogued_metric_with_each_dimension_set_it_is_emitted_with(
    any_stack: Deployment,
) -> None:
    app = [(name, dims, options) for namespace, name, dims, options in _lines(_body(any_stack))
           if namespace == NAMESPACE]
    shown = set()
    for name, dims, _ in app:
        assert {k: dims[k] for k in SERVICE} == SERVICE, name
        shown.add((name, tuple(sorted((k, v) for k, v in dims.items() if k != "service"))))
    assert shown == _catalogued()
    latency = {(dims["step"], options["stat"]) for name, dims, options in app
               if name == metrics.STEP_LATENCY.name}
    assert latency == {(step, stat) for step in ("PENDING", "PROCESSING", "PAYMENT_CONFIRMED",
                                                 "FULFILLED") for stat in ("p50", "p99")}


def test_exactly_the_metrics_the_catalogue_marks_alarmed_have_an_alarm_on_the_apps_namespace(
    any_stack: Deployment,
) -> None:
    watched = {a.inputs["metricName"] for a in _alarms(any_stack).values()
               if a.inputs["namespace"] == NAMESPACE}
    assert watched == {m.name for m in metrics.CATALOGUE if m.alarmed}
    assert watched  # the catalogue does mark some


def test_what_the_app_emits_for_each_catalogued_metric_matches_a_dashboard_line(
    lambda_stack: Deployment, monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    env = lambda_stack.named("process-orders").inputs["environment"]["variables"]
    monkeypatch.setattr(observability, "NAMESPACE", env["METRICS_NAMESPACE"])
    monkeypatch.setattr(observability, "SERVICE", env["SERVICE_NAME"])
    monkeypatch.delenv("METRICS_DISABLED", raising=False)
    lines = {(namespace, name, tuple(dims.items()))
             for namespace, name, dims, _ in _lines(_body(lambda_stack))}
    capsys.readouterr()
    for metric in metrics.CATALOGUE:
        for dims in metric.dimension_sets():
            observability.emit_metric(metric, **dims)
            record = json.loads(capsys.readouterr().out)
            (emf,) = record["_aws"]["CloudWatchMetrics"]
            assert emf["Metrics"] == [{"Name": metric.name, "Unit": metric.unit}]
            (keys,) = emf["Dimensions"]
            emitted = (emf["Namespace"], metric.name, tuple((k, record[k]) for k in keys))
            assert emitted in lines  # same namespace, name, keys in the same (sorted) order


def test_dashboard_shows_the_stacks_queues_api_functions_and_database(
    any_stack: Deployment,
) -> None:
    lines = _lines(_body(any_stack))
    by_namespace: dict[str, list[tuple[str, dict[str, str]]]] = {}
    for namespace, name, dims, _ in lines:
        by_namespace.setdefault(namespace, []).append((name, dims))
    sqs = {(name, dims["QueueName"]) for name, dims in by_namespace["AWS/SQS"]}
    assert sqs == {("ApproximateNumberOfMessagesVisible", "orderflow-test-orders-dlq"),
                   ("ApproximateAgeOfOldestMessage", "orderflow-test-orders"),
                   ("ApproximateNumberOfMessagesVisible", "orderflow-test-orders")}
    api = by_namespace["AWS/ApiGateway"]
    assert {name for name, _ in api} == {"Count", "4XXError", "5XXError", "Latency"}
    assert all(dims == {"ApiName": "orderflow-test-api", "Stage": "test"} for _, dims in api)
    functions = {fn.inputs["name"] for fn in any_stack.of_type("aws:lambda/function:Function")}
    lambda_lines = by_namespace["AWS/Lambda"]
    for metric in ("Errors", "Throttles", "Duration"):
        assert {d["FunctionName"] for n, d in lambda_lines if n == metric} == functions
    assert {(name, dims["DBInstanceIdentifier"]) for name, dims in by_namespace["AWS/RDS"]} == {
        ("CPUUtilization", "orderflow-test-db"), ("DatabaseConnections", "orderflow-test-db")}


def test_dashboard_lists_every_alarm_and_its_widgets_fit_without_overlap(
    any_stack: Deployment,
) -> None:
    body = _body(any_stack)
    (alarm_widget,) = [w for w in body["widgets"] if w["type"] == "alarm"]
    assert set(alarm_widget["properties"]["alarms"]) == {
        a.state["arn"] for a in _alarms(any_stack).values()}
    cells: set[tuple[int, int]] = set()
    for widget in body["widgets"]:
        assert widget["x"] + widget["width"] <= 24
        if widget["type"] == "metric":
            assert widget["properties"]["region"] == "eu-west-1"
        area = {(widget["x"] + dx, widget["y"] + dy)
                for dx in range(widget["width"]) for dy in range(widget["height"])}
        assert not cells & area, widget["properties"]["title"]
        cells |= area


def test_outbox_lag_and_processing_failure_alarms_watch_the_apps_metrics(
    any_stack: Deployment,
) -> None:
    alarms = _alarms(any_stack)
    expected = {"outbox-lag": (metrics.OUTBOX_LAG.name, "Maximum", 300),
                "processing-failures": (metrics.PROCESSING_FAILURES.name, "Sum", 10)}
    for key, (metric, statistic, threshold) in expected.items():
        inputs = alarms[key].inputs
        assert (inputs["namespace"], inputs["metricName"], inputs["dimensions"]) == (
            NAMESPACE, metric, SERVICE)
        assert (inputs["statistic"], inputs["threshold"], inputs["period"]) == (
            statistic, threshold, 300)
        assert inputs["alarmActions"] == [any_stack.outputs["operations_topic_arn"]]
