"""CloudWatch alarms on the failure modes that matter, and one dashboard to diagnose them.

Alarms notify the operations topic. The dashboard shows the app's own EMF metrics (what the
orders are doing) beside the AWS service metrics (what the infrastructure is doing), so an
alarm can be read against both on one screen. README.md ("Operate") says what to do
when each alarm fires. Both processor modes are covered: the `process-orders` function in
Lambda mode, the Fargate worker's service (CPU, memory) in Fargate mode.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import pulumi
import pulumi_aws as aws

from orderflow_infra.api import Api
from orderflow_infra.context import Context
from orderflow_infra.database import Database
from orderflow_infra.fargate import FargateWorker
from orderflow_infra.messaging import Messaging
from processor import metrics
from processor.metrics import Metric as AppMetric

OLDEST_MESSAGE_AGE_SECONDS = 600  # orders should leave the queue within minutes
API_5XX_PER_5_MINUTES = 5
DB_CPU_PERCENT = 80
# Aurora Serverless v2: capacity pinned near db_max_capacity_acu means the cluster cannot
# grow further; the next step is a higher maximum (or fewer connections doing work).
DB_ACU_UTILIZATION_PERCENT = 90
OUTBOX_LAG_SECONDS = 300  # the sweeper runs every minute; 5 minutes unsent means it fails
PROCESSING_FAILURES_PER_5_MINUTES = 10  # single retries are normal; a burst is not
# The Fargate worker's service averages (AWS/ECS, no Container Insights needed): a worker
# pinned near its task size is slow to drain the queue and, for memory, close to being killed.
WORKER_CPU_PERCENT = 80
WORKER_MEMORY_PERCENT = 80

WIDGET_PERIOD_SECONDS = 60
GRID_WIDTH = 24  # CloudWatch dashboards are 24 units wide


@dataclass(frozen=True)
class MonitoringArgs:
    """What is watched: the boxes whose metrics the alarms and the dashboard show."""

    messaging: Messaging
    database: Database
    api: Api
    # Every Lambda function of the stack, keyed like `api`, `process-orders`.
    functions: Mapping[str, aws.lambda_.Function]
    worker: FargateWorker | None  # the consumer in `processor: fargate`


@dataclass(frozen=True)
class DashboardTargets:
    """Resolved physical names the widgets point at (Outputs resolved, so plain strings)."""

    region: str
    namespace: str
    service: str
    queue: str
    dlq: str
    api: str
    stage: str
    db_dimensions: Mapping[str, str]  # DBInstanceIdentifier, or DBClusterIdentifier (Aurora)
    functions: Mapping[str, str]  # stack key (`api`, ...) -> Lambda function name
    alarm_arns: Sequence[str]
    worker_dimensions: Mapping[str, str] | None = None  # ClusterName, ServiceName (Fargate)


Metric = list[Any]  # CloudWatch's [namespace, name, dim, value, ..., {options}] form


def _metric(namespace: str, name: str, dims: Mapping[str, str], **options: str) -> Metric:
    """One metric line; dimensions sorted, as the app writes them in its EMF records."""
    return [namespace, name, *(part for key in sorted(dims) for part in (key, dims[key])),
            options]


def _graph(title: str, metrics: Sequence[Metric], region: str,
           thresholds: Mapping[str, float] | None = None,
           period: int = WIDGET_PERIOD_SECONDS) -> dict[str, Any]:
    """A time-series widget; `thresholds` draws alarm levels as labelled horizontal lines.

    A Sum alarm's line is only comparable with the graph when `period` is the alarm's period.
    """
    properties: dict[str, Any] = {
        "title": title, "view": "timeSeries", "region": region, "stacked": False,
        "period": period, "metrics": list(metrics),
    }
    if thresholds:
        properties["annotations"] = {"horizontal": [
            {"label": label, "value": value} for label, value in thresholds.items()]}
    return {"type": "metric", "width": 12, "height": 6, "properties": properties}


def _lay_out(widgets: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    """Place widgets left to right, wrapping at the grid width (CloudWatch needs x/y)."""
    placed: list[dict[str, Any]] = []
    x = y = row_height = 0
    for widget in widgets:
        if x + widget["width"] > GRID_WIDTH:
            x, y, row_height = 0, y + row_height, 0
        placed.append({**widget, "x": x, "y": y})
        x += widget["width"]
        row_height = max(row_height, widget["height"])
    return placed


def dashboard_body(t: DashboardTargets) -> dict[str, Any]:
    """The dashboard definition: alarm states on top, then orders, queues, API, compute, DB."""
    svc = {"service": t.service}

    def axis(right: bool) -> dict[str, str]:
        return {"yAxis": "right"} if right else {}

    def app(metric: AppMetric, stat: str, label: str, right: bool = False,
            **dims: str) -> Metric:
        """A line of the app's own metric (processor.metrics: what the app emits, with
        `service` and the metric's declared dimension)."""
        return _metric(t.namespace, metric.name, {**svc, **dims}, stat=stat, label=label,
                       **axis(right))

    def sqs(name: str, queue: str, label: str, right: bool = False) -> Metric:
        return _metric("AWS/SQS", name, {"QueueName": queue}, stat="Maximum", label=label,
                       **axis(right))

    api_dims = {"ApiName": t.api, "Stage": t.stage}
    db_dims = dict(t.db_dimensions)
    widgets = [
        {"type": "alarm", "width": GRID_WIDTH, "height": 3,
         "properties": {"title": "Alarms", "alarms": list(t.alarm_arns),
                        "sortBy": "stateUpdatedTimestamp"}},
        _graph("Orders created and processed, by final status", [
            app(metrics.ORDERS_CREATED, "Sum", "created"),
            *(app(metrics.ORDERS_PROCESSED, "Sum", status.lower(), final_status=status)
              for status in metrics.ORDERS_PROCESSED.values),
        ], t.region),
        _graph("Payment declines", [app(metrics.PAYMENT_DECLINES, "Sum", "declines")],
               t.region),
        _graph("Step latency p50 / p99 (ms)", [
            app(metrics.STEP_LATENCY, stat, f"{step.lower()} {stat}", step=step)
            for step in metrics.STEP_LATENCY.values for stat in ("p50", "p99")
        ], t.region),
        _graph("Processing failures, DLQ sends, DLQ depth", [
            app(metrics.PROCESSING_FAILURES, "Sum", "retryable failures"),
            app(metrics.DEAD_LETTERED, "Sum", "dead-lettered by the app"),
            *(app(metrics.SQS_BATCH_ENTRY_FAILURES, "Sum", f"{action} entries refused",
                  action=action)
              for action in metrics.SQS_BATCH_ENTRY_FAILURES.values),
            sqs("ApproximateNumberOfMessagesVisible", t.dlq, "DLQ depth", right=True),
        ], t.region),
        _graph("Outbox: oldest unsent record (s), unsent records", [
            app(metrics.OUTBOX_LAG, "Maximum", "lag (s)"),
            app(metrics.OUTBOX_UNSENT, "Maximum", "unsent", right=True),
            app(metrics.NOTIFICATIONS_GIVEN_UP, "Sum", "emails given up", right=True),
        ], t.region, {"lag alarm": OUTBOX_LAG_SECONDS}),
        _graph("Reconciler findings by kind (per run)", [
            app(metrics.RECONCILER_FINDINGS, "Maximum", kind, kind=kind)
            for kind in metrics.RECONCILER_FINDINGS.values
        ], t.region),
        _graph("Reconciler: findings per run, repairs by kind", [
            app(metrics.RECONCILER_FINDINGS_TOTAL, "Maximum", "findings"),
            *(app(metrics.RECONCILER_REPAIRS, "Sum", f"repaired {kind}", right=True, kind=kind)
              for kind in metrics.RECONCILER_REPAIRS.values),
        ], t.region, {"findings alarm": 1}),
        _graph("Provider webhooks by outcome, signatures refused", [
            *(app(metrics.WEBHOOK_EVENTS, "Sum", outcome, outcome=outcome)
              for outcome in metrics.WEBHOOK_EVENTS.values),
            app(metrics.WEBHOOK_REJECTED, "Sum", "refused (signature)", right=True),
        ], t.region),
        _graph("Order queue: oldest message age (s), visible messages", [
            sqs("ApproximateAgeOfOldestMessage", t.queue, "oldest (s)"),
            sqs("ApproximateNumberOfMessagesVisible", t.queue, "visible", right=True),
        ], t.region, {"age alarm": OLDEST_MESSAGE_AGE_SECONDS}),
        _graph("API requests, 4xx, 5xx (per 5 minutes)", [
            _metric("AWS/ApiGateway", name, api_dims, stat="Sum", label=label)
            for name, label in (("Count", "requests"), ("4XXError", "4xx"), ("5XXError", "5xx"))
        ], t.region, {"5xx alarm": API_5XX_PER_5_MINUTES}, period=300),
        _graph("API latency p50 / p99 (ms)", [
            _metric("AWS/ApiGateway", "Latency", api_dims, stat=stat, label=stat)
            for stat in ("p50", "p99")
        ], t.region),
        _graph("Lambda errors and throttles", [
            _metric("AWS/Lambda", name, {"FunctionName": function}, stat="Sum",
                    label=f"{key} {name.lower()}")
            for key, function in t.functions.items() for name in ("Errors", "Throttles")
        ], t.region),
        _graph("Lambda duration p99 (ms)", [
            _metric("AWS/Lambda", "Duration", {"FunctionName": function}, stat="p99", label=key)
            for key, function in t.functions.items()
        ], t.region),
        _graph("Database CPU (%), connections", [
            _metric("AWS/RDS", "CPUUtilization", db_dims, stat="Average", label="CPU %"),
            _metric("AWS/RDS", "DatabaseConnections", db_dims, stat="Maximum",
                    label="connections", yAxis="right"),
        ], t.region, {"CPU alarm": DB_CPU_PERCENT}),
    ]
    if "DBClusterIdentifier" in db_dims:
        widgets.append(_graph("Aurora capacity: ACUs, utilization of the maximum (%)", [
            _metric("AWS/RDS", "ServerlessDatabaseCapacity", db_dims, stat="Maximum",
                    label="ACUs"),
            _metric("AWS/RDS", "ACUUtilization", db_dims, stat="Maximum",
                    label="utilization %", yAxis="right"),
        ], t.region, {"ACU alarm": DB_ACU_UTILIZATION_PERCENT}))
    if t.worker_dimensions is not None:
        worker_dims = dict(t.worker_dimensions)
        widgets.append(_graph("Fargate worker CPU and memory (%)", [
            _metric("AWS/ECS", name, worker_dims, stat="Average", label=label)
            for name, label in (("CPUUtilization", "CPU %"), ("MemoryUtilization", "memory %"))
        ], t.region, {"CPU alarm": WORKER_CPU_PERCENT, "memory alarm": WORKER_MEMORY_PERCENT}))
    return {"widgets": _lay_out(widgets)}


def worker_dimensions(worker: FargateWorker) -> dict[str, pulumi.Output[str]]:
    """CloudWatch dimensions of the worker service's AWS/ECS metrics."""
    return {"ClusterName": worker.cluster.name, "ServiceName": worker.service.name}


class Monitoring(pulumi.ComponentResource):
    """The diagram's CloudWatch alarms, and one dashboard of the metrics behind them.

    Alarms on DLQ, queue age, API 5xx, Lambda errors/throttles, the Fargate worker's CPU and
    memory, DB CPU and connections, outbox lag and processing-failure bursts; each notifies
    the operations topic when it fires and when it clears.
    """

    alarms: dict[str, aws.cloudwatch.MetricAlarm]
    dashboard: aws.cloudwatch.Dashboard

    def __init__(self, name: str, ctx: Context, args: MonitoringArgs,
                 opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("orderflow:monitoring:Monitoring", name, {}, opts)
        ctx = ctx.within(self)
        self.alarms = {}
        self._alarms(ctx, args)
        self.dashboard = self._dashboard(ctx, args)
        self.register_outputs({"dashboard_name": self.dashboard.dashboard_name,
                               "alarm_names": [a.name for a in self.alarms.values()]})

    def _alarms(self, ctx: Context, args: MonitoringArgs) -> None:
        cfg = ctx.cfg
        msg, db, api = args.messaging, args.database, args.api
        actions = [msg.operations_topic.arn]

        def alarm(key: str, description: str, namespace: str, metric: str,
                  dimensions: Mapping[str, pulumi.Input[str]], statistic: str,
                  threshold: float, periods: int = 1, period: int = 60) -> None:
            self.alarms[key] = aws.cloudwatch.MetricAlarm(
                f"alarm-{key}", name=ctx.name(key), alarm_description=description,
                namespace=namespace, metric_name=metric, dimensions=dict(dimensions),
                statistic=statistic, period=period, evaluation_periods=periods,
                comparison_operator="GreaterThanOrEqualToThreshold", threshold=threshold,
                treat_missing_data="notBreaching", alarm_actions=actions, ok_actions=actions,
                opts=ctx.opts(),
            )

        alarm("dlq-not-empty", "Orders failed repeatedly and were dead-lettered", "AWS/SQS",
              "ApproximateNumberOfMessagesVisible", {"QueueName": msg.dlq.name}, "Maximum", 1)
        alarm("queue-oldest-message", "Orders are waiting too long to be processed",
              "AWS/SQS", "ApproximateAgeOfOldestMessage", {"QueueName": msg.queue.name},
              "Maximum", OLDEST_MESSAGE_AGE_SECONDS)
        alarm("api-5xx", "The API is returning server errors", "AWS/ApiGateway", "5XXError",
              {"ApiName": api.rest_api.name, "Stage": api.stage.stage_name}, "Sum",
              API_5XX_PER_5_MINUTES, period=300)
        for key, function in args.functions.items():
            for metric in ("Errors", "Throttles"):
                alarm(f"{key}-{metric.lower()}", f"Lambda {key} {metric.lower()}",
                      "AWS/Lambda", metric, {"FunctionName": function.name}, "Sum", 1,
                      period=300)
        if args.worker is not None:
            worker_dims = worker_dimensions(args.worker)
            alarm("worker-cpu", "The Fargate worker's CPU is high", "AWS/ECS",
                  "CPUUtilization", worker_dims, "Average", WORKER_CPU_PERCENT, periods=3,
                  period=300)
            alarm("worker-memory", "The Fargate worker's memory is near its task size",
                  "AWS/ECS", "MemoryUtilization", worker_dims, "Average",
                  WORKER_MEMORY_PERCENT, periods=3, period=300)
        db_dims = db.metric_dimensions
        alarm("db-cpu", "Database CPU is high", "AWS/RDS", "CPUUtilization", db_dims,
              "Average", DB_CPU_PERCENT, periods=3, period=300)
        alarm("db-connections", "Database connections are near the limit", "AWS/RDS",
              "DatabaseConnections", db_dims, "Maximum", cfg.db_connections_alarm_threshold,
              periods=2, period=300)
        if db.cluster is not None:
            alarm("db-capacity", "Aurora is at its maximum capacity (db_max_capacity_acu)",
                  "AWS/RDS", "ACUUtilization", db_dims, "Average", DB_ACU_UTILIZATION_PERCENT,
                  periods=3, period=300)
        # The app's own metrics: a missing datapoint means "nothing to report", not a failure.
        app_dims = {"service": cfg.service_name}
        alarm("outbox-lag", "Committed orders or notifications are not being sent (outbox)",
              cfg.metrics_namespace, metrics.OUTBOX_LAG.name, app_dims, "Maximum",
              OUTBOX_LAG_SECONDS,
              period=300)
        alarm("notifications-given-up", "Customer emails were given up (SES refused them;"
              " `admin outbox` lists them)", cfg.metrics_namespace,
              metrics.NOTIFICATIONS_GIVEN_UP.name, app_dims, "Sum", 1, period=300)
        alarm("processing-failures", "Many orders are failing processing and being retried",
              cfg.metrics_namespace, metrics.PROCESSING_FAILURES.name, app_dims, "Sum",
              PROCESSING_FAILURES_PER_5_MINUTES, period=300)
        # One datapoint per reconciler run: the period is the schedule's, so the alarm clears
        # with the first run that finds nothing (README "Operate": what each finding means).
        alarm("reconciler-findings", "The reconciler found records that disagree (with the "
              "guarantees or with the payment provider): `admin reconcile`",
              cfg.metrics_namespace, metrics.RECONCILER_FINDINGS_TOTAL.name, app_dims,
              "Maximum", 1, period=cfg.reconcile_interval_minutes * 60)

    def _dashboard(self, ctx: Context, args: MonitoringArgs) -> aws.cloudwatch.Dashboard:
        """The dashboard resource; its body is rendered once every name it shows is known."""
        cfg = ctx.cfg
        msg, api = args.messaging, args.api
        keys = list(args.functions)
        worker = worker_dimensions(args.worker) if args.worker is not None else None
        names = pulumi.Output.all(
            queue=msg.queue.name, dlq=msg.dlq.name, api=api.rest_api.name,
            stage=api.stage.stage_name, db=pulumi.Output.all(**args.database.metric_dimensions),
            functions=pulumi.Output.all(*(args.functions[key].name for key in keys)),
            alarms=pulumi.Output.all(*(alarm.arn for alarm in self.alarms.values())),
            worker=pulumi.Output.all(**worker) if worker is not None else None,
        )
        body = names.apply(lambda n: json.dumps(dashboard_body(DashboardTargets(
            region=cfg.region, namespace=cfg.metrics_namespace, service=cfg.service_name,
            queue=n["queue"], dlq=n["dlq"], api=n["api"], stage=n["stage"],
            db_dimensions=n["db"], functions=dict(zip(keys, n["functions"], strict=True)),
            alarm_arns=n["alarms"], worker_dimensions=n["worker"],
        )), sort_keys=True))
        return aws.cloudwatch.Dashboard("dashboard", dashboard_name=cfg.prefix,
                                        dashboard_body=body, opts=ctx.opts())
