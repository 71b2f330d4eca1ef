"""The update simulator: what `pulumi up` would do to a live stack when its config changes.

Runs the program under mocks with configuration A (the deployed stack), then B (fed A's
outputs, as the next `pulumi up` would read them), and classifies every resource: created,
deleted, unchanged, updated in place, or replaced. An input counts as changed when its value
differs, or when it comes from a resource that is replaced (its outputs are unknown until
then, as in a real preview). A change of a replace-forcing input (replacement_rules.py)
replaces; a replaced provider replaces everything it manages. Then the stack's rules are
checked on the plan (`violations`).
"""

from __future__ import annotations

import functools
import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import pulumi

from orderflow_infra import stack
from orderflow_infra.config import ConfigError
from orderflow_mocks.harness import RecordingMocks, RecordingMonitor
from tests.infra.replacement_rules import FIXED_NAME, FORCE_NEW, NAME_SCOPE

Op = Literal["create", "delete", "same", "update", "replace"]
DATABASE_TYPES = frozenset({"aws:rds/instance:Instance", "aws:rds/cluster:Cluster"})
MIGRATION = "aws:lambda/invocation:Invocation"
# What serves or consumes with the database's address: it must wait for the migration.
DATABASE_CLIENTS = frozenset({"aws:lambda/function:Function", "aws:ecs/service:Service"})
CONSUMERS = frozenset({"aws:lambda/eventSourceMapping:EventSourceMapping",
                       "aws:ecs/service:Service"})
SUBNET = "aws:ec2/subnet:Subnet"
# Types the program leaves to Pulumi's auto-naming: the engine, not the provider, picks the
# name (a new random suffix on replacement), so mocks must answer it or `name` reads as
# missing in everything that refers to it (a parameter group, a proxy).
AUTO_NAMED = frozenset({"aws:rds/parameterGroup:ParameterGroup",
                        "aws:rds/clusterParameterGroup:ClusterParameterGroup",
                        "aws:rds/proxy:Proxy", "aws:iam/role:Role",
                        "aws:iam/rolePolicy:RolePolicy", "aws:ec2/securityGroup:SecurityGroup"})


@dataclass(frozen=True)
class Declared:
    """One resource as the engine receives it, with what decides how it changes."""

    urn: str
    typ: str
    name: str
    inputs: dict[str, Any]
    provider: str  # the provider's URN ("" for providers themselves)
    property_dependencies: dict[str, frozenset[str]]
    dependencies: frozenset[str]
    delete_before_replace: bool
    retain_on_delete: bool
    ignore_changes: frozenset[str]


class _FullMonitor(RecordingMonitor):
    """Keeps every registration option the simulator needs, in registration order (an
    input's source registers before it, so this order is a dependency order)."""

    def __init__(self, mocks: RecordingMocks) -> None:
        super().__init__(mocks)
        self.declared: dict[str, Declared] = {}

    def RegisterResource(self, request: Any) -> Any:  # the gRPC method name
        response = super().RegisterResource(request)
        if request.custom:
            self.declared[response.urn] = Declared(
                urn=response.urn, typ=request.type, name=request.name,
                inputs=_plain(pulumi.runtime.rpc.deserialize_properties(request.object)),
                provider=request.provider.rsplit("::", 1)[0] if request.provider else "",
                property_dependencies={key: frozenset(deps.urns) for key, deps
                                       in request.propertyDependencies.items()},
                dependencies=frozenset(request.dependencies),
                delete_before_replace=bool(request.deleteBeforeReplace),
                retain_on_delete=bool(request.retainOnDelete),
                ignore_changes=frozenset(request.ignoreChanges))
        return response


class _AutoNamingMocks(RecordingMocks):
    """The harness's mocks, answering auto-generated names as the engine would."""

    def new_resource(self, args: pulumi.runtime.MockResourceArgs) -> tuple[str, dict[str, Any]]:
        resource_id, state = super().new_resource(args)
        if args.typ in AUTO_NAMED and not state.get("name"):
            state = {**state, "name": f"{args.name}-a1b2c3d"}
        return resource_id, state


def _plain(value: Any) -> Any:
    """Inputs as comparable data: archives and assets by content, as the engine diffs them."""
    if isinstance(value, pulumi.FileArchive | pulumi.FileAsset):
        return {"file-sha256": hashlib.sha256(Path(value.path).read_bytes()).hexdigest()}
    if isinstance(value, dict):
        return {key: _plain(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_plain(item) for item in value]
    return value


@dataclass(frozen=True)
class Declaration:
    """A whole run: every resource by URN (registration order) and the stack outputs."""

    config: dict[str, str]
    resources: dict[str, Declared]
    outputs: dict[str, Any]


def declare(config: Mapping[str, str], deployed: Mapping[str, Any] | None = None,
            docker: bool = True) -> Declaration:
    """Run the program under mocks; `deployed` is the previous run's stack outputs."""
    pulumi.runtime.settings.ROOT.set(None)
    mocks = _AutoNamingMocks(region=config.get("region", "eu-west-1"), stack_outputs=deployed)
    monitor = _FullMonitor(mocks)
    pulumi.runtime.set_mocks(mocks, project="orderflow", stack="test", preview=False,
                             monitor=monitor)
    pulumi.runtime.set_all_config({f"orderflow:{k}": v for k, v in config.items()})
    captured: dict[str, Any] = {}

    @pulumi.runtime.test
    def run() -> pulumi.Output[None]:
        stack.main(docker=lambda: docker)
        root = pulumi.runtime.settings.get_root_resource()
        assert isinstance(root, pulumi.runtime.stack.Stack)
        return pulumi.Output.from_input(root.outputs).apply(captured.update)

    run()
    return Declaration(dict(config), dict(monitor.declared), captured)


@dataclass(frozen=True)
class Step:
    """What happens to one resource; `forced_by` names the inputs that force a replacement."""

    op: Op
    resource: Declared
    changed: frozenset[str] = frozenset()
    forced_by: frozenset[str] = frozenset()


@dataclass(frozen=True)
class Plan:
    """Every resource's step, from A to B (B's resources first, then A's deletions)."""

    before: Declaration
    after: Declaration
    steps: list[Step] = field(default_factory=list)

    def by_op(self, *ops: Op) -> list[Step]:
        return [step for step in self.steps if step.op in ops]

    def step(self, typ: str, name: str) -> Step:
        (match,) = [s for s in self.steps if s.resource.typ == typ and s.resource.name == name]
        return match


def _changed_inputs(old: Declared, new: Declared, replaced: set[str]) -> frozenset[str]:
    keys = set(old.inputs) | set(new.inputs)
    changed = {key for key in keys if old.inputs.get(key) != new.inputs.get(key)}
    changed |= {key for key, deps in new.property_dependencies.items() if deps & replaced}
    return frozenset(changed - new.ignore_changes)


def plan(before: Declaration, after: Declaration) -> Plan:
    """Classify every resource of A and B, in B's dependency order."""
    steps: list[Step] = []
    replaced: set[str] = set()
    for urn, new in after.resources.items():
        old = before.resources.get(urn)
        if old is None:
            steps.append(Step("create", new))
            continue
        changed = _changed_inputs(old, new, replaced)
        forced = changed & FORCE_NEW[new.typ]
        if forced or new.provider in replaced:
            replaced.add(urn)
            steps.append(Step("replace", new, changed, forced or frozenset({"provider"})))
        else:
            steps.append(Step("update" if changed else "same", new, changed))
    steps += [Step("delete", old) for urn, old in before.resources.items()
              if urn not in after.resources]
    return Plan(before, after, steps)


def violations(result: Plan) -> list[str]:
    """The stack's rules, each broken one described (an empty list: the update is safe).

    1. A replaced resource that keeps its fixed physical name is deleted first.
    2. A new or replaced database is migrated (the migration runs again) before any function
       or service that talks to the database is changed to point at it.
    3. No subnet is replaced with an unchanged CIDR (the new one, created first, collides).
    4. Exactly one queue consumer remains.
    """
    found: list[str] = []
    replaced = {step.resource.urn for step in result.by_op("replace")}
    for step in result.by_op("replace"):
        res = step.resource
        key = FIXED_NAME.get(res.typ)
        old = result.before.resources[res.urn]
        # A new region (replaced provider) or a new container: the old name is elsewhere.
        elsewhere = res.provider in replaced or NAME_SCOPE.get(res.typ) in step.forced_by
        if elsewhere:
            continue
        if key and old.inputs.get(key) == res.inputs.get(key) and not res.delete_before_replace:
            found.append(f"{res.typ} {res.name} is replaced under the same name "
                         f"{res.inputs.get(key)!r} but created before the old one is deleted")
        if res.typ == SUBNET and old.inputs.get("cidrBlock") == res.inputs.get("cidrBlock"):
            found.append(f"subnet {res.name} is replaced with the same CIDR "
                         f"{res.inputs.get('cidrBlock')} ({', '.join(sorted(step.forced_by))})")
    new_database = [s for s in result.by_op("create", "replace")
                    if s.resource.typ in DATABASE_TYPES]
    if new_database:
        runs = [s for s in result.steps if s.resource.typ == MIGRATION]
        if not any(s.op in ("create", "replace") for s in runs):
            found.append("the database is new but the migration does not run again")
        run_urns = {s.resource.urn for s in runs}
        migrating = {urn for s in runs for urn in s.resource.dependencies}  # the migrate function
        for client in result.by_op("create", "update", "replace"):
            if (client.resource.typ in DATABASE_CLIENTS and client.resource.urn not in migrating
                    and not client.resource.dependencies & run_urns):
                found.append(f"{client.resource.name} changes before the new database is "
                             "migrated")
    consumers = [r for r in result.after.resources.values() if r.typ in CONSUMERS]
    if len(consumers) != 1:
        found.append(f"{len(consumers)} queue consumers remain")
    return found


@dataclass(frozen=True)
class Outcome:
    """A simulated change: its plan, or the refusal that stops it before anything changes."""

    plan: Plan | None
    refused: str | None = None


@functools.lru_cache(maxsize=16)
def _declared_once(config: frozenset[tuple[str, str]]) -> Declaration:
    return declare(dict(config))


def simulate(config_a: Mapping[str, str], config_b: Mapping[str, str]) -> Outcome:
    """Deploy A (once per distinct A), then B on top of it."""
    before = _declared_once(frozenset(config_a.items()))
    try:
        after = declare(config_b, deployed=json.loads(json.dumps(before.outputs)))
    except ConfigError as error:
        return Outcome(None, str(error))
    return Outcome(plan(before, after))
