"""CloudWatch alarms on the failure modes that matter, all sent to the operations topic."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import pulumi
import pulumi_aws as aws

from orderflow_infra.context import Context
from orderflow_infra.database import Database
from orderflow_infra.functions import Functions
from orderflow_infra.messaging import Messaging

OLDEST_MESSAGE_AGE_SECONDS = 600  # orders should leave the queue within minutes
API_5XX_PER_5_MINUTES = 5
DB_CPU_PERCENT = 80


@dataclass(frozen=True)
class Monitoring:
    """Alarms by name; a dashboard (a later issue) can be built from the same inputs."""

    alarms: dict[str, aws.cloudwatch.MetricAlarm]


def create_monitoring(ctx: Context, msg: Messaging, db: Database, fns: Functions
                      ) -> Monitoring:
    """DLQ, queue age, API 5xx, per-function errors/throttles, DB CPU and connections."""
    cfg = ctx.cfg
    alarms: dict[str, aws.cloudwatch.MetricAlarm] = {}
    actions = [msg.operations_topic.arn]

    def alarm(key: str, description: str, namespace: str, metric: str,
              dimensions: Mapping[str, pulumi.Input[str]], statistic: str, threshold: float,
              periods: int = 1, period: int = 60) -> None:
        alarms[key] = aws.cloudwatch.MetricAlarm(
            f"alarm-{key}", name=ctx.name(key), alarm_description=description,
            namespace=namespace, metric_name=metric, dimensions=dict(dimensions),
            statistic=statistic, period=period, evaluation_periods=periods,
            comparison_operator="GreaterThanOrEqualToThreshold", threshold=threshold,
            treat_missing_data="notBreaching", alarm_actions=actions, ok_actions=actions,
            opts=ctx.opts(),
        )

    alarm("dlq-not-empty", "Orders failed repeatedly and were dead-lettered", "AWS/SQS",
          "ApproximateNumberOfMessagesVisible", {"QueueName": msg.dlq.name}, "Maximum", 1)
    alarm("queue-oldest-message", "Orders are waiting too long to be processed", "AWS/SQS",
          "ApproximateAgeOfOldestMessage", {"QueueName": msg.queue.name}, "Maximum",
          OLDEST_MESSAGE_AGE_SECONDS)
    alarm("api-5xx", "The API is returning server errors", "AWS/ApiGateway", "5XXError",
          {"ApiName": fns.rest_api.name, "Stage": fns.stage.stage_name}, "Sum",
          API_5XX_PER_5_MINUTES, period=300)
    for key, function in fns.functions.items():
        for metric in ("Errors", "Throttles"):
            alarm(f"{key}-{metric.lower()}", f"Lambda {key} {metric.lower()}",
                  "AWS/Lambda", metric, {"FunctionName": function.name}, "Sum", 1, period=300)
    db_dims = {"DBInstanceIdentifier": db.instance.identifier}
    alarm("db-cpu", "Database CPU is high", "AWS/RDS", "CPUUtilization", db_dims, "Average",
          DB_CPU_PERCENT, periods=3, period=300)
    alarm("db-connections", "Database connections are near the limit", "AWS/RDS",
          "DatabaseConnections", db_dims, "Maximum", cfg.db_connections_alarm_threshold,
          periods=2, period=300)
    return Monitoring(alarms=alarms)
