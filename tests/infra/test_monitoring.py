"""The operations dashboard and the alarms on the app's own (EMF) metrics.

The dashboard is only useful if each line names a metric that exists, so the app metrics are
checked against what `processor.observability.emit_metric` really writes under the stack's
environment: same namespace, same name, same dimension set and values.
"""

from __future__ import annotations

import json
from typing import Any

import pytest

from processor import observability
from tests.infra.harness import Deployment

DASHBOARD = "aws:cloudwatch/dashboard:Dashboard"
NAMESPACE = "orderflow/test"
SERVICE = {"service": "orderflow"}
Line = tuple[str, str, dict[str, str], dict[str, Any]]

# The app's metrics and the dimension sets it emits them with (besides `service`).
APP_METRICS = {
    ("OrdersCreated", ()),
    *(("OrdersProcessed", (("final_status", s),))
      for s in ("COMPLETED", "PAYMENT_FAILED", "CANCELLED")),
    ("PaymentDeclines", ()),
    *(("StepLatency", (("step", s),))
      for s in ("PENDING", "PROCESSING", "PAYMENT_CONFIRMED", "FULFILLED")),
    ("DeadLettered", ()),
    ("ProcessingFailures", ()),
    ("OutboxUnsent", ()),
    ("OutboxLag", ()),
    ("NotificationsGivenUp", ()),
    *(("SqsBatchEntryFailures", (("action", a),))
      for a in ("delete_message_batch", "change_message_visibility_batch")),
}


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


def test_dashboard_graphs_every_app_metric_with_its_dimension_set(any_stack: Deployment) -> None:
    app = [(name, dims, options) for namespace, name, dims, options in _lines(_body(any_stack))
           if namespace == NAMESPACE]
    shown = set()
    for name, dims, _ in app:
        assert {k: dims[k] for k in SERVICE} == SERVICE, name
        shown.add((name, tuple(sorted((k, v) for k, v in dims.items() if k != "service"))))
    assert shown == APP_METRICS
    latency = {(dims["step"], options["stat"]) for name, dims, options in app
               if name == "StepLatency"}
    assert latency == {(step, stat) for step in ("PENDING", "PROCESSING", "PAYMENT_CONFIRMED",
                                                 "FULFILLED") for stat in ("p50", "p99")}


def test_dashboard_app_metrics_are_exactly_what_the_app_emits(
    lambda_stack: Deployment, monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    env = lambda_stack.named("process-orders").inputs["environment"]["variables"]
    monkeypatch.setattr(observability, "NAMESPACE", env["METRICS_NAMESPACE"])
    monkeypatch.setattr(observability, "SERVICE", env["POWERTOOLS_SERVICE_NAME"])
    monkeypatch.delenv("METRICS_DISABLED", raising=False)
    capsys.readouterr()
    for namespace, name, dims, _ in _lines(_body(lambda_stack)):
        if namespace != NAMESPACE:
            continue
        observability.emit_metric(name, **{k: v for k, v in dims.items() if k != "service"})
        record = json.loads(capsys.readouterr().out)
        (emf,) = record["_aws"]["CloudWatchMetrics"]
        assert emf["Namespace"] == namespace
        assert emf["Metrics"][0]["Name"] == name
        assert emf["Dimensions"] == [list(dims)]  # same keys, same (sorted) order
        assert {k: record[k] for k in dims} == dims


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


def test_outbox_lag_processing_failure_and_given_up_email_alarms_watch_the_apps_metrics(
    any_stack: Deployment,
) -> None:
    alarms = _alarms(any_stack)
    expected = {"outbox-lag": ("OutboxLag", "Maximum", 300),
                "processing-failures": ("ProcessingFailures", "Sum", 10),
                "notifications-given-up": ("NotificationsGivenUp", "Sum", 1)}
    for key, (metric, statistic, threshold) in expected.items():
        inputs = alarms[key].inputs
        assert (inputs["namespace"], inputs["metricName"], inputs["dimensions"]) == (
            NAMESPACE, metric, SERVICE)
        assert (inputs["statistic"], inputs["threshold"], inputs["period"]) == (
            statistic, threshold, 300)
        assert inputs["alarmActions"] == [any_stack.outputs["operations_topic_arn"]]
