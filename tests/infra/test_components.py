"""The program's shape is the architecture diagram: one component per box, owning its resources.

Parents are read from the registration requests the engine receives (harness.py), so a
resource declared without its component's `parent` shows up at the stack root and fails here.
"""

from __future__ import annotations

import pytest

from orderflow_mocks.harness import Deployment, Recorded, deploy

STACK = "pulumi:pulumi:Stack"
PROVIDER_PREFIX = "pulumi:providers:"
COMPONENTS = {
    "orderflow:network:Network",
    "orderflow:database:Database",
    "orderflow:messaging:Messaging",
    "orderflow:payments:Payments",
    "orderflow:migration:Migration",
    "orderflow:api:Api",
    "orderflow:order_processor:OrderProcessor",
    "orderflow:sweeper:OutboxSweeper",
    "orderflow:reconciler:Reconciler",
    "orderflow:monitoring:Monitoring",
}
# Resources that show which box owns what, including both consumers and the worker's alarms.
OWNERS = {
    ("aws:ec2/vpc:Vpc", "vpc"): "orderflow:network:Network",
    ("aws:ec2/vpcEndpoint:VpcEndpoint", "vpce-sqs"): "orderflow:network:Network",
    ("aws:vpc/securityGroupIngressRule:SecurityGroupIngressRule", "app-to-db-in"):
        "orderflow:database:Database",
    ("aws:rds/instance:Instance", "db"): "orderflow:database:Database",
    ("aws:sqs/queue:Queue", "orders-queue"): "orderflow:messaging:Messaging",
    ("aws:ses/emailIdentity:EmailIdentity", "sender"): "orderflow:messaging:Messaging",
    ("aws:lambda/function:Function", "migrate"): "orderflow:migration:Migration",
    ("aws:lambda/invocation:Invocation", "migrate-run"): "orderflow:migration:Migration",
    ("aws:lambda/function:Function", "api"): "orderflow:api:Api",
    ("aws:iam/role:Role", "api-role"): "orderflow:api:Api",
    ("aws:apigateway/restApi:RestApi", "api"): "orderflow:api:Api",
    ("aws:apigateway/apiKey:ApiKey", "api-key"): "orderflow:api:Api",
    ("aws:lambda/function:Function", "sweep-outbox"): "orderflow:sweeper:OutboxSweeper",
    ("aws:cloudwatch/eventRule:EventRule", "sweep-outbox-schedule"):
        "orderflow:sweeper:OutboxSweeper",
    ("aws:lambda/function:Function", "reconcile"): "orderflow:reconciler:Reconciler",
    ("aws:cloudwatch/eventRule:EventRule", "reconcile-schedule"):
        "orderflow:reconciler:Reconciler",
    ("aws:cloudwatch/metricAlarm:MetricAlarm", "alarm-dlq-not-empty"):
        "orderflow:monitoring:Monitoring",
    ("aws:cloudwatch/dashboard:Dashboard", "dashboard"): "orderflow:monitoring:Monitoring",
}
LAMBDA_CONSUMER = {
    ("aws:lambda/function:Function", "process-orders"),
    ("aws:lambda/eventSourceMapping:EventSourceMapping", "process-orders-sqs"),
}
FARGATE_CONSUMER = {
    ("aws:ecr/repository:Repository", "processor-repo"),
    ("docker-build:index:Image", "worker-image"),
    ("aws:ecs/service:Service", "worker-service"),
    ("aws:appautoscaling/target:Target", "worker-scaling-target"),
    ("aws:cloudwatch/metricAlarm:MetricAlarm", "worker-backlog-high"),
}
WORKER_ALARMS = {"alarm-worker-cpu": "CPUUtilization", "alarm-worker-memory": "MemoryUtilization"}


def _type_of(urn: str) -> str:
    """The resource's own type: the last `$`-separated part of the URN's type chain."""
    return urn.split("::")[2].split("$")[-1]


def _owner(resource: Recorded) -> str:
    return _type_of(resource.parent) if resource.parent else ""


@pytest.fixture(scope="module")
def proxy_without_api_key_stack(base_config: dict[str, str]) -> Deployment:
    """The optional parts switched the other way: no API key, a proxy in front of RDS."""
    return deploy({**base_config, "api_key_required": "false", "rds_proxy_enabled": "true"})


@pytest.fixture(params=["lambda_stack", "fargate_stack", "fargate_prebuilt_stack",
                        "aurora_proxy_stack", "proxy_without_api_key_stack"])
def every_variant(request: pytest.FixtureRequest) -> Deployment:
    """Each processor mode, database engine and optional part, with and without."""
    return request.getfixturevalue(request.param)


def test_each_box_of_the_diagram_is_one_component_directly_under_the_stack(
    any_stack: Deployment,
) -> None:
    types = [c.typ for c in any_stack.components]
    assert sorted(types) == sorted(COMPONENTS)
    assert {_type_of(c.parent) for c in any_stack.components} == {STACK}


def test_every_resource_but_the_provider_has_a_component_parent(
    every_variant: Deployment,
) -> None:
    components = {c.urn for c in every_variant.components}
    orphans = [(r.typ, r.name) for r in every_variant.resources
               if not r.typ.startswith(PROVIDER_PREFIX) and r.parent not in components]
    assert not orphans
    (provider,) = [r for r in every_variant.resources if r.typ.startswith(PROVIDER_PREFIX)]
    assert _type_of(provider.parent) == STACK  # shared by every box


def test_every_component_registers_its_outputs(every_variant: Deployment) -> None:
    for component in every_variant.components:
        outputs = every_variant.component_outputs.get(component.urn)
        assert outputs, component.typ
        assert all(value is not None for value in outputs.values()), (component.typ, outputs)


def test_resources_belong_to_the_box_the_diagram_draws_them_in(any_stack: Deployment) -> None:
    for (typ, name), owner in OWNERS.items():
        assert _owner(any_stack.named(name, typ)) == owner, (typ, name)


@pytest.mark.parametrize(("stack_name", "present", "absent"), [
    ("lambda_stack", LAMBDA_CONSUMER, FARGATE_CONSUMER),
    ("fargate_stack", FARGATE_CONSUMER, LAMBDA_CONSUMER),
])
def test_the_order_processor_holds_exactly_the_consumer_of_its_mode(
    request: pytest.FixtureRequest, stack_name: str,
    present: set[tuple[str, str]], absent: set[tuple[str, str]],
) -> None:
    stack: Deployment = request.getfixturevalue(stack_name)
    declared = {(r.typ, r.name): r for r in stack.resources}
    for key in present:
        assert _owner(declared[key]) == "orderflow:order_processor:OrderProcessor", key
    assert not absent & set(declared)
    (processor,) = [c for c in stack.components
                    if c.typ == "orderflow:order_processor:OrderProcessor"]
    assert stack.component_outputs[processor.urn]["mode"] == stack.config["processor"]


def test_monitoring_watches_the_fargate_workers_cpu_and_memory(fargate_stack: Deployment
                                                               ) -> None:
    ops = fargate_stack.outputs["operations_topic_arn"]
    for name, metric in WORKER_ALARMS.items():
        alarm = fargate_stack.named(name)
        assert _owner(alarm) == "orderflow:monitoring:Monitoring"
        inputs = alarm.inputs
        assert (inputs["namespace"], inputs["metricName"], inputs["statistic"]) == (
            "AWS/ECS", metric, "Average")
        assert inputs["dimensions"] == {"ClusterName": "orderflow-test-cluster",
                                        "ServiceName": "orderflow-test-worker"}
        assert inputs["alarmActions"] == [ops] and inputs["okActions"] == [ops]
    body = fargate_stack.named("dashboard").inputs["dashboardBody"]
    assert '"AWS/ECS"' in body and '"orderflow-test-worker"' in body


def test_lambda_mode_has_no_worker_alarms_or_worker_graph(lambda_stack: Deployment) -> None:
    names = {r.name for r in lambda_stack.of_type("aws:cloudwatch/metricAlarm:MetricAlarm")}
    assert not names & set(WORKER_ALARMS)
    assert '"AWS/ECS"' not in lambda_stack.named("dashboard").inputs["dashboardBody"]
