"""Queue semantics, the SQS/schedule wiring, migrations, logs and alarms."""

from __future__ import annotations

import json

import pytest

from orderflow_mocks.harness import Deployment, deploy

APP_ENV_NAMES = {
    "AUTH",
    "ORDER_QUEUE_URL",
    "ORDER_DLQ_URL",
    "NOTIFICATION_TOPIC_ARN",
    "SENDER_EMAIL",
    "DB_SECRET_ARN",
    "DB_HOST",
    "DB_PORT",
    "DB_NAME",
    "APP_ENV",
    "LOG_LEVEL",
    "SERVICE_NAME",
    "METRICS_NAMESPACE",
    "DB_PREPARED_STATEMENTS",
    "API_KEY_REQUIRED",
    "PAYMENT_PROVIDER",
}


def test_order_queue_redrives_to_the_dlq_after_configured_receives(any_stack: Deployment) -> None:
    queue, dlq = any_stack.named("orders-queue"), any_stack.named("orders-dlq")
    policy = json.loads(queue.inputs["redrivePolicy"])
    assert policy == {"deadLetterTargetArn": dlq.state["arn"], "maxReceiveCount": 5}
    assert queue.inputs["sqsManagedSseEnabled"] and dlq.inputs["sqsManagedSseEnabled"]


def test_visibility_timeout_is_at_least_six_times_the_processor_timeout(
    lambda_stack: Deployment,
) -> None:
    visibility = lambda_stack.named("orders-queue").inputs["visibilityTimeoutSeconds"]
    timeout = lambda_stack.named("process-orders").inputs["timeout"]
    assert timeout == 40
    assert visibility >= 6 * timeout


def test_sqs_mapping_reports_batch_failures_with_configured_batch_and_concurrency(
    lambda_stack: Deployment,
) -> None:
    (mapping,) = lambda_stack.of_type("aws:lambda/eventSourceMapping:EventSourceMapping")
    assert mapping.inputs["functionResponseTypes"] == ["ReportBatchItemFailures"]
    assert mapping.inputs["batchSize"] == 10
    assert mapping.inputs["scalingConfig"] == {"maximumConcurrency": 5}
    assert mapping.inputs["eventSourceArn"] == lambda_stack.named("orders-queue").state["arn"]
    assert mapping.inputs["functionName"] == lambda_stack.named("process-orders").state["arn"]


def test_functions_run_in_the_vpc_with_the_app_environment(any_stack: Deployment) -> None:
    for fn in any_stack.of_type("aws:lambda/function:Function"):
        env = fn.inputs["environment"]["variables"]
        own = {"RECONCILE_FIX"} if fn.name == "reconcile" else set()
        assert set(env) == APP_ENV_NAMES | own, fn.name
        assert env["DB_SECRET_ARN"].startswith("arn:aws:secretsmanager:")
        assert env["SERVICE_NAME"] == "orderflow"
        assert env["METRICS_NAMESPACE"] == "orderflow/test"  # per environment
        assert env["DB_PREPARED_STATEMENTS"] == "on"  # no RDS Proxy in this stack
        assert fn.inputs["vpcConfig"]["securityGroupIds"] == ["app-sg-id"]
        assert fn.inputs["runtime"] == "python3.11"


def test_every_function_has_a_log_group_with_retention_named_after_it(
    any_stack: Deployment,
) -> None:
    groups = {
        g.inputs["name"]: g.inputs["retentionInDays"]
        for g in any_stack.of_type("aws:cloudwatch/logGroup:LogGroup")
    }
    for fn in any_stack.of_type("aws:lambda/function:Function"):
        assert groups[f"/aws/lambda/{fn.inputs['name']}"] == 14


def test_migrations_run_once_per_artifact_hash(any_stack: Deployment) -> None:
    (run,) = any_stack.of_type("aws:lambda/invocation:Invocation")
    assert run.inputs["functionName"] == "orderflow-test-migrate"
    digest = run.inputs["triggers"]["artifact_sha256"]
    assert len(digest) == 64
    assert json.loads(run.inputs["input"])["artifact_sha256"] == digest


def test_outbox_sweeper_runs_on_chalices_schedule(any_stack: Deployment) -> None:
    rule = any_stack.named("sweep-outbox-schedule")
    assert rule.inputs["scheduleExpression"] == "rate(1 minute)"
    target = any_stack.named("sweep-outbox-target")
    assert target.inputs["arn"] == any_stack.named("sweep-outbox").state["arn"]
    permission = any_stack.named("sweep-outbox-invoke").inputs
    assert permission["principal"] == "events.amazonaws.com"


def test_alarms_cover_failure_modes_and_notify_the_operations_topic(any_stack: Deployment) -> None:
    ops = any_stack.outputs["operations_topic_arn"]
    alarms = {
        a.name.removeprefix("alarm-"): a.inputs
        for a in any_stack.of_type("aws:cloudwatch/metricAlarm:MetricAlarm")
        if a.name.startswith("alarm-")
    }
    for key in (
        "dlq-not-empty",
        "queue-oldest-message",
        "api-5xx",
        "db-cpu",
        "db-connections",
        "api-errors",
        "api-throttles",
        "outbox-lag",
        "processing-failures",
    ):
        assert key in alarms
    assert alarms["dlq-not-empty"]["dimensions"] == {"QueueName": "orderflow-test-orders-dlq"}
    assert all(a["alarmActions"] == [ops] for a in alarms.values())
    consumer = "process-orders-errors" in alarms
    assert consumer == (any_stack.config["processor"] == "lambda")


def test_notification_email_subscribes_to_the_notification_topic(any_stack: Deployment) -> None:
    (sub,) = any_stack.of_type("aws:sns/topicSubscription:TopicSubscription")
    assert sub.inputs["endpoint"] == "ops@example.com"
    assert sub.inputs["topic"] == any_stack.outputs["notification_topic_arn"]


@pytest.mark.parametrize("enabled", [True, False])
def test_tracing_config_switches_xray_on_functions_roles_and_the_stage(
    base_config: dict[str, str], enabled: bool
) -> None:
    stack = deploy({**base_config, "tracing_enabled": str(enabled).lower()})
    functions = stack.of_type("aws:lambda/function:Function")
    assert {fn.name for fn in functions} == {"api", "sweep-outbox", "migrate", "process-orders",
                                             "reconcile"}
    for fn in functions:
        assert fn.inputs["tracingConfig"] == {"mode": "Active" if enabled else "PassThrough"}
    assert stack.of_type("aws:apigateway/stage:Stage")[0].inputs["xrayTracingEnabled"] is enabled
    for policy in stack.of_type("aws:iam/rolePolicy:RolePolicy"):
        is_function_role = policy.name.removesuffix("-role-policy") in {fn.name for fn in functions}
        xray = [s for s in json.loads(policy.inputs["policy"])["Statement"]
                if "xray:PutTraceSegments" in s["Action"]]
        expected = [{"Effect": "Allow", "Action": ["xray:PutTraceSegments",
                                                   "xray:PutTelemetryRecords"],
                     "Resource": ["*"]}] if enabled and is_function_role else []
        assert xray == expected, policy.name
