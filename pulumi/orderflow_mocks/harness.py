"""Pulumi mocks and a fake chalice artifact, so the stack builds in-process in under a second.

`deploy()` resets Pulumi's process-global runtime state, runs the whole program under fresh
mocks and returns plain recorded data, so assertions on it cannot pass by being un-awaited.
"""

from __future__ import annotations

import json
import sys
import zipfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pulumi
from chalice import Chalice
from chalice.app import ScheduledEventConfig, SQSEventConfig
from chalice.deploy.swagger import CFNSwaggerGenerator
from pulumi.runtime.mocks import MockMonitor

from orderflow_infra import stack
from orderflow_infra.packaging import REPO_ROOT

CHALICE_APP_DIR = REPO_ROOT / "chalice_app"
ACCOUNT = "123456789012"
REGION = "eu-west-1"
ZONES = ["eu-west-1a", "eu-west-1b", "eu-west-1c"]
# What DescribeAvailabilityZones answers per region: (name, zone id, opt-in status). Each
# region has a Local Zone that needs opting in; us-east-1 has use1-az3, which RDS Proxy and
# several endpoint services do not support.
REGION_ZONES: dict[str, list[tuple[str, str, str]]] = {
    "eu-west-1": [("eu-west-1a", "euw1-az1", "opt-in-not-required"),
                  ("eu-west-1b", "euw1-az2", "opt-in-not-required"),
                  ("eu-west-1c", "euw1-az3", "opt-in-not-required"),
                  ("eu-west-1-lhr-1a", "euw1-lhr1-az1", "opted-in")],
    "us-east-1": [("us-east-1a", "use1-az3", "opt-in-not-required"),
                  ("us-east-1b", "use1-az4", "opt-in-not-required"),
                  ("us-east-1c", "use1-az6", "opt-in-not-required"),
                  ("us-east-1-bos-1a", "use1-bos1-az1", "opted-in")],
}
FAKE_API_KEY_VALUE = "fake-api-key-value-never-exported"
FARGATE_IMAGE = f"{ACCOUNT}.dkr.ecr.{REGION}.amazonaws.com/orderflow-test-processor:v1"
# What pulumi-docker-build reports after a push; the task definition must run exactly this.
IMAGE_DIGEST = "sha256:" + "ab" * 32
ECR_TOKEN_PASSWORD = "fake-ecr-token-password"


@dataclass(frozen=True)
class Recorded:
    """One resource as the engine would see it: type token, name, inputs (camelCase)."""

    typ: str
    name: str
    inputs: dict[str, Any]
    state: dict[str, Any]
    provider: str | None
    # URNs this resource waits for (explicit depends_on plus the resources its inputs come
    # from) and its delete-before-replace option, as the engine receives them.
    dependencies: frozenset[str] = frozenset()
    delete_before_replace: bool = False
    urn: str = ""
    # The parent's URN as registered ("" for the stack itself) and whether this is a
    # provider-managed (custom) resource rather than a component.
    parent: str = ""
    custom: bool = True


def _computed(typ: str, name: str, inputs: dict[str, Any]) -> dict[str, Any]:
    """Outputs the provider would compute and the program reads back."""
    physical = inputs.get("name") or name
    arn = f"arn:aws:{typ.split(':')[1].split('/')[0]}:{REGION}:{ACCOUNT}:{physical}"
    by_type: dict[str, dict[str, Any]] = {
        "aws:sqs/queue:Queue": {
            "arn": f"arn:aws:sqs:{REGION}:{ACCOUNT}:{physical}",
            "url": f"https://sqs.{REGION}.amazonaws.com/{ACCOUNT}/{physical}",
        },
        "aws:lambda/function:Function": {
            "arn": f"arn:aws:lambda:{REGION}:{ACCOUNT}:function:{physical}",
            "invokeArn": f"arn:aws:apigateway:{REGION}:lambda:path/2015-03-31/functions/"
            f"arn:aws:lambda:{REGION}:{ACCOUNT}:function:{physical}/invocations",
        },
        "aws:cloudwatch/logGroup:LogGroup": {
            "arn": f"arn:aws:logs:{REGION}:{ACCOUNT}:log-group:{physical}",
        },
        "aws:rds/instance:Instance": {
            "address": f"{physical}.abc.{REGION}.rds.amazonaws.com",
            "endpoint": f"{physical}.abc.{REGION}.rds.amazonaws.com:5432",
            "masterUserSecrets": [
                {
                    "secretArn": f"arn:aws:secretsmanager:{REGION}:{ACCOUNT}:secret:rds!db-1-Ab",
                    "secretStatus": "active",
                    "kmsKeyId": "aws/secretsmanager",
                }
            ],
        },
        "aws:rds/cluster:Cluster": {
            "endpoint": f"{inputs.get('clusterIdentifier')}.cluster-abc.{REGION}.rds.amazonaws.com",
            "masterUserSecrets": [
                {
                    "secretArn": f"arn:aws:secretsmanager:{REGION}:{ACCOUNT}:secret:rds!cluster-Ab",
                    "secretStatus": "active",
                    "kmsKeyId": "aws/secretsmanager",
                }
            ],
        },
        "aws:rds/proxy:Proxy": {"endpoint": f"{physical}.proxy-abc.{REGION}.rds.amazonaws.com"},
        "aws:apigateway/restApi:RestApi": {
            "executionArn": f"arn:aws:execute-api:{REGION}:{ACCOUNT}:{name}-id",
            "rootResourceId": "root",
        },
        "aws:apigateway/stage:Stage": {
            "invokeUrl": f"https://{inputs.get('restApi')}.execute-api.{REGION}.amazonaws.com/"
            f"{inputs.get('stageName')}",
        },
        "aws:apigateway/apiKey:ApiKey": {"value": FAKE_API_KEY_VALUE},
        "aws:ecr/repository:Repository": {
            "repositoryUrl": f"{ACCOUNT}.dkr.ecr.{REGION}.amazonaws.com/{physical}",
            "registryId": ACCOUNT,
            "arn": f"arn:aws:ecr:{REGION}:{ACCOUNT}:repository/{physical}",
        },
        "docker-build:index:Image": {"digest": IMAGE_DIGEST},
        "aws:ec2/vpcEndpoint:VpcEndpoint": {"prefixListId": "pl-s3"},
        "aws:cloudwatch/metricAlarm:MetricAlarm": {
            "arn": f"arn:aws:cloudwatch:{REGION}:{ACCOUNT}:alarm:{physical}",
        },
        "aws:ses/emailIdentity:EmailIdentity": {
            "arn": f"arn:aws:ses:{REGION}:{ACCOUNT}:identity/{inputs.get('email')}",
        },
    }
    return {"arn": arn, **by_type.get(typ, {})}


@dataclass(frozen=True)
class Invoke:
    """One data-source call the program made: token and arguments (camelCase)."""

    token: str
    args: dict[str, Any]


def _zones(region: str, args: Mapping[str, Any]) -> dict[str, Any]:
    """getAvailabilityZones, honouring the arguments the program may pass."""
    opt_in = {value for f in args.get("filters") or [] if f["name"] == "opt-in-status"
              for value in f["values"]}
    zones = [(name, zone_id) for name, zone_id, status in REGION_ZONES[region]
             if zone_id not in (args.get("excludeZoneIds") or [])
             and name not in (args.get("excludeNames") or [])
             and (not opt_in or status in opt_in)]
    return {"names": [n for n, _ in zones], "zoneIds": [z for _, z in zones]}


class RecordingMocks(pulumi.runtime.Mocks):
    """Records every registration and invoke; answers the data sources the program calls.

    `endpoint_zones` maps an endpoint service's short name (`sqs`, `email`, ...) to the
    zones it is offered in; a service not listed is offered in every zone of the region.
    """

    def __init__(self, region: str = REGION,
                 endpoint_zones: Mapping[str, Sequence[str]] | None = None) -> None:
        self.resources: list[Recorded] = []
        self.invokes: list[Invoke] = []
        self.region = region
        self.endpoint_zones = dict(endpoint_zones or {})

    def new_resource(self, args: pulumi.runtime.MockResourceArgs) -> tuple[str, dict[str, Any]]:
        state = {**_computed(args.typ, args.name, args.inputs), **args.inputs}
        self.resources.append(
            Recorded(args.typ, args.name, dict(args.inputs), state, args.provider,
                     custom=bool(args.custom))
        )
        return f"{args.name}-id", state

    def call(self, args: pulumi.runtime.MockCallArgs
             ) -> tuple[dict[str, Any], list[tuple[str, str]]]:
        """The invoke's result and no check failures (the SDK iterates that list)."""
        self.invokes.append(Invoke(args.token, dict(args.args)))
        return self._answer(args), []

    def _answer(self, args: pulumi.runtime.MockCallArgs) -> dict[str, Any]:
        if args.token == "aws:index/getAvailabilityZones:getAvailabilityZones":
            return _zones(self.region, args.args)
        if args.token == "aws:ec2/getVpcEndpointService:getVpcEndpointService":
            service = args.args["serviceName"].removeprefix(f"com.amazonaws.{self.region}.")
            every_zone = [name for name, _, _ in REGION_ZONES[self.region]]
            return {"serviceName": args.args["serviceName"],
                    "availabilityZones": list(self.endpoint_zones.get(service, every_zone))}
        if args.token == "aws:ecr/getAuthorizationToken:getAuthorizationToken":
            return {"userName": "AWS", "password": ECR_TOKEN_PASSWORD,
                    "proxyEndpoint": f"https://{ACCOUNT}.dkr.ecr.{REGION}.amazonaws.com",
                    "authorizationToken": "QVdTOmZha2U=", "expiresAt": "2026-12-02T00:00:00Z",
                    "registryId": args.args.get("registryId")}
        raise NotImplementedError(f"unexpected invoke {args.token}")


@dataclass(frozen=True)
class Registration:
    """What the engine receives beside the inputs, for one resource."""

    urn: str
    dependencies: frozenset[str]
    delete_before_replace: bool
    parent: str


class RecordingMonitor(MockMonitor):
    """The SDK's mock monitor, also keeping what `MockResourceArgs` leaves out.

    The mocks see only inputs; ordering (`dependencies`), `deleteBeforeReplace` and the
    parent travel in the registration request, so they are taken from there. A component's
    `register_outputs` arrives as its own request; the outputs are kept by URN.
    """

    def __init__(self, mocks: RecordingMocks) -> None:
        super().__init__(mocks)
        self.options: dict[tuple[str, str], Registration] = {}
        self.component_outputs: dict[str, dict[str, Any]] = {}

    def RegisterResource(self, request: Any) -> Any:  # the gRPC method name
        response = MockMonitor.RegisterResource(self, request)
        self.options[(request.type, request.name)] = Registration(
            response.urn, frozenset(request.dependencies), bool(request.deleteBeforeReplace),
            request.parent)
        return response

    def RegisterResourceOutputs(self, request: Any) -> Any:  # the gRPC method name
        outputs = pulumi.runtime.rpc.deserialize_properties(request.outputs)
        self.component_outputs[request.urn] = dict(outputs)
        return MockMonitor.RegisterResourceOutputs(self, request)


@dataclass(frozen=True)
class Deployment:
    """A finished mock deployment: recorded resources and resolved stack outputs."""

    config: dict[str, str]
    resources: list[Recorded]  # provider-managed resources (and providers), no components
    outputs: dict[str, Any]
    invokes: list[Invoke] = field(default_factory=list)
    components: list[Recorded] = field(default_factory=list)
    # Each component's registered outputs, by URN (a component that registers none is absent).
    component_outputs: dict[str, dict[str, Any]] = field(default_factory=dict)

    def of_type(self, typ: str) -> list[Recorded]:
        return [r for r in self.resources if r.typ == typ]

    def named(self, name: str, typ: str | None = None) -> Recorded:
        (match,) = [r for r in self.resources if r.name == name and (typ is None or r.typ == typ)]
        return match

    def depends_on(self, dependent: Recorded, dependency: Recorded) -> bool:
        """Whether the engine would finish `dependency` before it touches `dependent`."""
        return dependency.urn in dependent.dependencies


def use_mocks(config: dict[str, str], mocks: RecordingMocks | None = None
              ) -> tuple[RecordingMocks, RecordingMonitor]:
    """Reset Pulumi's process-global runtime, then install fresh mocks and config."""
    pulumi.runtime.settings.ROOT.set(None)  # else set_mocks keeps the previous root Stack
    mocks = mocks or RecordingMocks(region=config.get("region", REGION))
    monitor = RecordingMonitor(mocks)
    pulumi.runtime.set_mocks(mocks, project="orderflow", stack="test", preview=False,
                             monitor=monitor)
    pulumi.runtime.set_all_config({f"orderflow:{k}": v for k, v in config.items()})
    return mocks, monitor


def deploy(config: dict[str, str], mocks: RecordingMocks | None = None, docker: bool = True
           ) -> Deployment:
    """Run the program (`stack.main`, which exports) and collect what it registered.

    `docker` is what the program's Docker probe answers (this machine has no Docker).
    """
    mocks, monitor = use_mocks(config, mocks)
    captured: dict[str, Any] = {}

    def run() -> pulumi.Output[None]:
        stack.main(docker=lambda: docker)
        root = pulumi.runtime.settings.get_root_resource()
        assert isinstance(root, pulumi.runtime.stack.Stack)
        return pulumi.Output.from_input(root.outputs).apply(captured.update)

    pulumi.runtime.test(run)()  # awaits the Output, as the decorator does for tests
    recorded = []
    for r in mocks.resources:
        reg = monitor.options[(r.typ, r.name)]
        recorded.append(Recorded(r.typ, r.name, r.inputs, r.state, r.provider,
                                 reg.dependencies, reg.delete_before_replace, reg.urn,
                                 reg.parent, r.custom))
    return Deployment(config=config, resources=[r for r in recorded if r.custom],
                      outputs=captured, invokes=list(mocks.invokes),
                      components=[r for r in recorded if not r.custom],
                      component_outputs=dict(monitor.component_outputs))


def chalice_app() -> Chalice:
    """The real application of chalice_app/app.py: its routes, handlers and so its swagger.

    Imported the way `chalice package` loads it (its folder on sys.path), so the stack under
    mocks serves exactly the routes the deployed API will, `/docs` and `/openapi.json`
    included."""
    if str(CHALICE_APP_DIR) not in sys.path:
        sys.path.insert(0, str(CHALICE_APP_DIR))
    import app

    application: Chalice = app.app
    return application


def _function(handler: str, events: dict[str, Any] | None = None) -> dict[str, Any]:
    props: dict[str, Any] = {
        "Runtime": "python3.11",
        "Handler": handler,
        "CodeUri": "./deployment.zip",
        "Timeout": 60,
        "MemorySize": 128,
        "Architectures": ["x86_64"],
        "Role": {"Fn::GetAtt": ["DefaultRole", "Arn"]},
    }
    if events:
        props["Events"] = events
    return {"Type": "AWS::Serverless::Function", "Properties": props}


def _resource_name(name: str) -> str:
    """chalice's SAM resource name for a function (`process_orders` -> `ProcessOrders`)."""
    return "".join(word.capitalize() for word in name.split("_"))


def _handlers(application: Chalice) -> dict[str, Any]:
    """One SAM function per handler of `application`, with its event, as chalice writes it."""
    resources = {"APIHandler": _function("app.app")}
    for source in application.event_sources:
        name = _resource_name(source.name)
        if isinstance(source, SQSEventConfig):
            event = {f"{name}SqsEventSource": {"Type": "SQS", "Properties": {
                "Queue": source.queue, "BatchSize": source.batch_size}}}
        elif isinstance(source, ScheduledEventConfig):
            expression = source.schedule_expression
            schedule = expression if isinstance(expression, str) else expression.to_string()
            event = {f"{name}Event": {"Type": "Schedule",
                                      "Properties": {"Schedule": schedule}}}
        else:
            raise TypeError(f"teach the harness chalice's {type(source).__name__}")
        resources[name] = _function(source.handler_string, event)
    for function in application.pure_lambda_functions:
        resources[_resource_name(function.name)] = _function(function.handler_string)
    return resources


def write_fake_artifact(directory: Path) -> None:
    """deployment.zip + sam.json in chalice's SAM layout, from the real app: its handlers and
    chalice's own swagger of its routes (only the zip's contents are a stand-in)."""
    directory.mkdir(parents=True, exist_ok=True)
    with zipfile.ZipFile(directory / "deployment.zip", "w") as archive:
        archive.writestr("app.py", "app = None\n")
    application = chalice_app()
    sam = {
        "AWSTemplateFormatVersion": "2010-09-09",
        "Transform": "AWS::Serverless-2016-10-31",
        "Resources": {
            **_handlers(application),
            "RestAPI": {
                "Type": "AWS::Serverless::Api",
                "Properties": {
                    "StageName": "api",
                    "DefinitionBody": CFNSwaggerGenerator().generate_swagger(application),
                },
            },
        },
    }
    (directory / "sam.json").write_text(json.dumps(sam, indent=2))
