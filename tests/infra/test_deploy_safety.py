"""What keeps a live stack healthy across updates: ordering, zones and replacements."""

from __future__ import annotations

import json
from typing import Literal

import pytest

from orderflow_infra.config import LAMBDA_RESERVED_ENV, RESERVED_ENV_PREFIX
from orderflow_infra.network import UNSUPPORTED_ZONE_IDS, ZoneError
from orderflow_mocks.harness import FARGATE_IMAGE, Deployment, RecordingMocks, deploy

FUNCTION = "aws:lambda/function:Function"
SUBNET = "aws:ec2/subnet:Subnet"
ZONES_INVOKE = "aws:index/getAvailabilityZones:getAvailabilityZones"
ENDPOINT_SERVICE_INVOKE = "aws:ec2/getVpcEndpointService:getVpcEndpointService"
INTERFACE_SERVICES = {"sqs", "sns", "email", "secretsmanager"}
FARGATE_INTERFACE_SERVICES = INTERFACE_SERVICES | {"ecr.api", "ecr.dkr", "logs"}

Choice = Literal["auto-named", "delete-before-replace", "replaced-only-by-renaming",
                 "name-need-not-be-unique"]
# Every resource type the program declares whose physical name could collide when a change
# forces a replacement (Pulumi creates the replacement first), and how each avoids it:
# - auto-named: no name input; Pulumi adds a random suffix, so old and new coexist.
# - delete-before-replace: the fixed name stays; the old resource goes first.
# - replaced-only-by-renaming: of the arguments the program sets, only the name (or a
#   constant) forces replacement in terraform-provider-aws, so a replacement has a new name.
# - name-need-not-be-unique: AWS allows duplicates (or keeps revisions) under that name.
PHYSICAL_NAMES: dict[str, tuple[str | None, Choice]] = {
    # Description and VPC force replacement; group names are unique per VPC.
    "aws:ec2/securityGroup:SecurityGroup": (None, "auto-named"),
    # Family and description force replacement.
    "aws:rds/parameterGroup:ParameterGroup": (None, "auto-named"),
    # vpc_subnet_ids forces replacement (zone choice can change them).
    "aws:rds/proxy:Proxy": (None, "auto-named"),
    "aws:iam/role:Role": (None, "auto-named"),
    "aws:iam/rolePolicy:RolePolicy": (None, "auto-named"),
    # username, storage_encrypted... force replacement; deletion protection then stops it.
    "aws:rds/instance:Instance": ("identifier", "delete-before-replace"),
    "aws:rds/cluster:Cluster": ("clusterIdentifier", "delete-before-replace"),
    "aws:rds/clusterParameterGroup:ClusterParameterGroup": (None, "auto-named"),
    # A replacement instance joins the cluster before the old one is removed.
    "aws:rds/clusterInstance:ClusterInstance": (None, "auto-named"),
    "aws:rds/subnetGroup:SubnetGroup": ("name", "replaced-only-by-renaming"),
    "aws:sqs/queue:Queue": ("name", "replaced-only-by-renaming"),
    "aws:sns/topic:Topic": ("name", "replaced-only-by-renaming"),
    "aws:ses/emailIdentity:EmailIdentity": ("email", "replaced-only-by-renaming"),
    "aws:lambda/function:Function": ("name", "replaced-only-by-renaming"),
    "aws:cloudwatch/logGroup:LogGroup": ("name", "replaced-only-by-renaming"),
    "aws:cloudwatch/eventRule:EventRule": ("name", "replaced-only-by-renaming"),
    "aws:cloudwatch/metricAlarm:MetricAlarm": ("name", "replaced-only-by-renaming"),
    "aws:cloudwatch/dashboard:Dashboard": ("dashboardName", "replaced-only-by-renaming"),
    "aws:apigateway/stage:Stage": ("stageName", "replaced-only-by-renaming"),
    "aws:ecr/repository:Repository": ("name", "replaced-only-by-renaming"),
    "aws:ecs/cluster:Cluster": ("name", "replaced-only-by-renaming"),
    "aws:ecs/service:Service": ("name", "replaced-only-by-renaming"),
    "aws:apigateway/restApi:RestApi": ("name", "name-need-not-be-unique"),
    "aws:apigateway/apiKey:ApiKey": ("name", "name-need-not-be-unique"),
    "aws:apigateway/usagePlan:UsagePlan": ("name", "name-need-not-be-unique"),
    "aws:ecs/taskDefinition:TaskDefinition": ("family", "name-need-not-be-unique"),
}
NAME_INPUTS = {"name", "namePrefix", "identifier", "clusterIdentifier", "dashboardName", "email",
               "stageName"}
# Name inputs that refer to another resource rather than name this one.
REFERENCES = {"aws:rds/clusterInstance:ClusterInstance": {"clusterIdentifier"}}


@pytest.fixture(scope="module")
def proxy_stack(base_config: dict[str, str]) -> Deployment:
    return deploy({**base_config, "rds_proxy_enabled": "true", "alarm_email": "a@example.com"})


def _subnet_zones(stack: Deployment) -> list[str]:
    return [s.inputs["availabilityZone"] for s in stack.of_type(SUBNET)]


def test_app_code_waits_for_the_migration_of_its_artifact(any_stack: Deployment) -> None:
    """Code that serves (or consumes) must not run before its schema; migrate runs it."""
    migration = any_stack.named("migrate-run")
    migrate = any_stack.named("migrate", FUNCTION)
    assert any_stack.depends_on(migration, migrate)
    assert any_stack.depends_on(migration, any_stack.named("db"))
    assert not any_stack.depends_on(migrate, migration)
    consumers = ["api", "sweep-outbox", "reconcile"]
    if any_stack.config["processor"] == "lambda":
        consumers.append("process-orders")
    else:
        assert any_stack.depends_on(any_stack.named("worker-service"), migration)
    assert {fn.name for fn in any_stack.of_type(FUNCTION)} == {"migrate", *consumers}
    for key in consumers:
        assert any_stack.depends_on(any_stack.named(key, FUNCTION), migration), key


def test_zones_exclude_opt_in_and_known_unsupported_ones(lambda_stack: Deployment) -> None:
    (zones_call,) = [i for i in lambda_stack.invokes if i.token == ZONES_INVOKE]
    assert zones_call.args["state"] == "available"
    assert set(UNSUPPORTED_ZONE_IDS) <= set(zones_call.args["excludeZoneIds"])
    assert "use1-az3" in UNSUPPORTED_ZONE_IDS
    assert zones_call.args["filters"] == [{"name": "opt-in-status",
                                           "values": ["opt-in-not-required"]}]
    assert _subnet_zones(lambda_stack) == ["eu-west-1a", "eu-west-1b"]


def test_zone_choice_asks_every_interface_service_of_either_mode(any_stack: Deployment) -> None:
    """Both modes' services, whichever mode runs: a mode switch must not move a subnet."""
    asked = {i.args["serviceName"].removeprefix("com.amazonaws.eu-west-1.")
             for i in any_stack.invokes if i.token == ENDPOINT_SERVICE_INVOKE}
    assert asked == FARGATE_INTERFACE_SERVICES
    assert {i.args["serviceType"] for i in any_stack.invokes
            if i.token == ENDPOINT_SERVICE_INVOKE} == {"Interface"}


def test_use1_az3_never_gets_a_subnet(base_config: dict[str, str]) -> None:
    stack = deploy({**base_config, "region": "us-east-1"})
    assert _subnet_zones(stack) == ["us-east-1b", "us-east-1c"]  # us-east-1a is use1-az3 here


@pytest.mark.parametrize(("processor", "service"), [("lambda", "email"),
                                                    ("fargate", "ecr.dkr")])
def test_a_zone_one_endpoint_service_lacks_gets_no_subnet(
        base_config: dict[str, str], processor: str, service: str) -> None:
    mocks = RecordingMocks(endpoint_zones={service: ["eu-west-1b", "eu-west-1c"]})
    stack = deploy({**base_config, "processor": processor, "processor_image": FARGATE_IMAGE},
                   mocks)
    assert _subnet_zones(stack) == ["eu-west-1b", "eu-west-1c"]
    subnet_ids = [s.name + "-id" for s in stack.of_type(SUBNET)]
    for endpoint in stack.of_type("aws:ec2/vpcEndpoint:VpcEndpoint"):
        if endpoint.inputs["vpcEndpointType"] == "Interface":
            assert endpoint.inputs["subnetIds"] == subnet_ids


def test_too_few_supported_zones_stop_the_program_naming_the_gaps(
        base_config: dict[str, str]) -> None:
    mocks = RecordingMocks(endpoint_zones={"email": ["eu-west-1c"]})
    with pytest.raises(ZoneError, match=r"eu-west-1 has 1 zone\(s\) that every service "
                                        r"supports, 2 are needed \(eu-west-1a lacks email; "
                                        r"eu-west-1b lacks email\)"):
        deploy(base_config, mocks)


def test_fixed_physical_names_cannot_collide_on_replacement(
        proxy_stack: Deployment, fargate_stack: Deployment, base_config: dict[str, str]) -> None:
    aurora_stack = deploy({**base_config, "db_engine": "aurora-serverless",
                           "rds_proxy_enabled": "true"})
    checked: set[str] = set()
    for stack in (proxy_stack, fargate_stack, aurora_stack):
        for resource in stack.resources:
            names = NAME_INPUTS & set(resource.inputs) - REFERENCES.get(resource.typ, set())
            if resource.typ not in PHYSICAL_NAMES:
                assert not names, f"{resource.typ} has a physical name but no entry"
                continue
            key, choice = PHYSICAL_NAMES[resource.typ]
            checked.add(resource.typ)
            names |= {key} & set(resource.inputs)
            if choice == "auto-named":
                assert not names, resource.name
                continue
            assert names == {key}, resource.name
            assert resource.delete_before_replace is (choice == "delete-before-replace"), \
                resource.name
    assert checked == set(PHYSICAL_NAMES)


def test_no_function_or_task_receives_a_runtime_reserved_variable(any_stack: Deployment) -> None:
    """Lambda rejects reserved keys at create time; ECS would let them shadow its own."""
    names = [n for fn in any_stack.of_type(FUNCTION)
             for n in fn.inputs["environment"]["variables"]]
    for task in any_stack.of_type("aws:ecs/taskDefinition:TaskDefinition"):
        names += [e["name"] for c in json.loads(task.inputs["containerDefinitions"])
                  for e in c["environment"]]
    assert names
    assert not [n for n in names
                if n.startswith(RESERVED_ENV_PREFIX) or n in LAMBDA_RESERVED_ENV]
