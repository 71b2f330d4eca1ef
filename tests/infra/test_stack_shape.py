"""What each processor mode deploys: exactly one consumer type, and the promised outputs."""

from __future__ import annotations

import json
from collections import Counter

from orderflow_mocks.harness import FAKE_API_KEY_VALUE, IMAGE_DIGEST, Deployment

ESM = "aws:lambda/eventSourceMapping:EventSourceMapping"
FUNCTION = "aws:lambda/function:Function"
FARGATE_ONLY = (
    "aws:ecr/repository:Repository",
    "aws:ecs/cluster:Cluster",
    "aws:ecs/taskDefinition:TaskDefinition",
    "aws:ecs/service:Service",
    "aws:appautoscaling/target:Target",
    "aws:appautoscaling/policy:Policy",
)
COMMON = {
    "aws:ec2/vpc:Vpc": 1,
    "aws:ec2/subnet:Subnet": 2,
    "aws:rds/instance:Instance": 1,
    "aws:sqs/queue:Queue": 2,
    "aws:sns/topic:Topic": 2,
    "aws:ses/emailIdentity:EmailIdentity": 1,
    "aws:apigateway/restApi:RestApi": 1,
    "aws:apigateway/deployment:Deployment": 1,
    "aws:apigateway/stage:Stage": 1,
    "aws:apigateway/apiKey:ApiKey": 1,
    "aws:apigateway/usagePlan:UsagePlan": 1,
    "aws:lambda/invocation:Invocation": 1,
    "aws:cloudwatch/eventRule:EventRule": 2,  # the outbox sweeper's and the reconciler's
    "aws:cloudwatch/dashboard:Dashboard": 1,
}


def _counts(stack: Deployment) -> Counter[str]:
    return Counter(r.typ for r in stack.resources)


def test_both_modes_deploy_the_shared_backbone(any_stack: Deployment) -> None:
    counts = _counts(any_stack)
    assert {typ: counts[typ] for typ in COMMON} == COMMON


def test_lambda_mode_consumes_the_queue_with_a_lambda_and_has_no_fargate_resources(
    lambda_stack: Deployment,
) -> None:
    counts = _counts(lambda_stack)
    assert counts[ESM] == 1
    assert {r.inputs["handler"] for r in lambda_stack.of_type(FUNCTION)} == {
        "app.app",
        "app.process_orders",
        "app.sweep_outbox",
        "app.migrate",
        "app.reconcile",
    }
    assert all(counts[typ] == 0 for typ in FARGATE_ONLY)


def test_fargate_mode_consumes_with_ecs_and_has_no_sqs_mapping_or_consumer_lambda(
    fargate_stack: Deployment,
) -> None:
    counts = _counts(fargate_stack)
    assert counts[ESM] == 0
    assert "app.process_orders" not in {
        r.inputs["handler"] for r in fargate_stack.of_type(FUNCTION)
    }
    assert all(counts[typ] >= 1 for typ in FARGATE_ONLY)


def test_fargate_worker_runs_the_processor_command_in_private_subnets(
    fargate_stack: Deployment,
) -> None:
    (task,) = fargate_stack.of_type("aws:ecs/taskDefinition:TaskDefinition")
    (container,) = json.loads(task.inputs["containerDefinitions"])
    assert container["command"] == ["python", "-m", "processor", "worker"]
    (repository,) = fargate_stack.of_type("aws:ecr/repository:Repository")
    assert container["image"] == f"{repository.state['repositoryUrl']}@{IMAGE_DIGEST}"
    env = {e["name"]: e["value"] for e in container["environment"]}
    assert env["WORKER_CONCURRENCY"] == "4"
    (service,) = fargate_stack.of_type("aws:ecs/service:Service")
    network = service.inputs["networkConfiguration"]
    assert network["assignPublicIp"] is False
    assert network["subnets"] == ["private-0-id", "private-1-id"]


def test_fargate_scales_on_visible_queue_depth(fargate_stack: Deployment) -> None:
    (target,) = fargate_stack.of_type("aws:appautoscaling/target:Target")
    assert (target.inputs["minCapacity"], target.inputs["maxCapacity"]) == (1, 4)
    scaling_alarms = [
        a
        for a in fargate_stack.of_type("aws:cloudwatch/metricAlarm:MetricAlarm")
        if a.name.startswith("worker-backlog")
    ]
    assert len(scaling_alarms) == 2
    policies = {p.state["arn"] for p in fargate_stack.of_type("aws:appautoscaling/policy:Policy")}
    assert {a.inputs["alarmActions"][0] for a in scaling_alarms} == policies
    for alarm in scaling_alarms:
        assert alarm.inputs["metricName"] == "ApproximateNumberOfMessagesVisible"
        assert alarm.inputs["dimensions"] == {"QueueName": "orderflow-test-orders"}


def test_outputs_are_present_and_carry_no_secret_values(any_stack: Deployment) -> None:
    out = any_stack.outputs
    expected = {
        "api_url",
        "queue_url",
        "dlq_url",
        "notification_topic_arn",
        "operations_topic_arn",
        "db_endpoint",
        "db_secret_arn",
        "processor_mode",
        "log_group_names",
        "api_key_id",
        "dashboard_name",
    }
    assert expected <= set(out)
    assert out["api_url"].endswith("/test/orders")
    assert out["processor_mode"] == any_stack.config["processor"]
    assert out["api_key_id"] == "api-key-id"
    assert out["dashboard_name"] == "orderflow-test"
    assert FAKE_API_KEY_VALUE not in repr(out)


def test_fargate_outputs_name_the_repository_and_worker_logs(fargate_stack: Deployment) -> None:
    out = fargate_stack.outputs
    assert out["ecr_repository_url"].endswith("/orderflow-test-processor")
    assert out["log_group_names"]["worker"] == "/ecs/orderflow-test-worker"


def test_every_aws_resource_uses_the_explicit_regional_provider(any_stack: Deployment) -> None:
    (provider,) = any_stack.of_type("pulumi:providers:aws")
    assert provider.inputs["region"] == "eu-west-1"
    aws_resources = [r for r in any_stack.resources if r.typ.startswith("aws:")]
    assert aws_resources
    assert {r.provider.split("::")[-2] for r in aws_resources if r.provider} == {"aws"}
    assert all(r.provider for r in aws_resources)
