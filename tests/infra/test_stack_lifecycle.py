"""Issue 20's defects, each pinned by what two configurations declare (or one, where the
defect is in what a single declaration waits for): later `pulumi up`s, switches and
destroys stay safe."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from orderflow_infra import packaging
from orderflow_infra.config import ConfigError, OrderflowConfig
from orderflow_infra.deployed import DeployedSettings, check_transition, is_major_upgrade
from orderflow_infra.migration import MIGRATE_TIMEOUT_SECONDS
from orderflow_infra.packaging import FINGERPRINT_FILE, ArtifactError, locate_artifact
from orderflow_mocks.harness import FARGATE_IMAGE, write_fake_artifact
from tests.infra.simulator import Declaration, Declared, Plan, Step, declare, simulate, violations

INSTANCE = "aws:rds/instance:Instance"
CLUSTER = "aws:rds/cluster:Cluster"
RUN = "aws:lambda/invocation:Invocation"
FUNCTION = "aws:lambda/function:Function"
SUBNET = "aws:ec2/subnet:Subnet"


def _one(declaration: Declaration, typ: str, name: str | None = None) -> Declared:
    (match,) = [r for r in declaration.resources.values()
                if r.typ == typ and (name is None or r.name == name)]
    return match


def _urns(declaration: Declaration, *names: str) -> set[str]:
    return {r.urn for r in declaration.resources.values() if r.name in names}


def _awaited(declaration: Declaration, urns: frozenset[str]) -> set[str]:
    """`urns` and everything they wait for, transitively."""
    seen: set[str] = set()
    todo = list(urns)
    while todo:
        urn = todo.pop()
        if urn not in seen and urn in declaration.resources:
            seen.add(urn)
            todo += declaration.resources[urn].dependencies
    return seen


@pytest.fixture(scope="module")
def plain(base_config: dict[str, str]) -> dict[str, str]:
    return {**base_config, "db_deletion_protection": "false"}


# 1. A replaced database never got its schema.
@pytest.mark.parametrize("change", [{"db_name": "orders"}, {"db_engine": "aurora-serverless"}])
def test_a_new_database_runs_the_migration_again_before_the_code_points_at_it(
        plain: dict[str, str], change: dict[str, str]) -> None:
    outcome = simulate(plain, {**plain, **change})
    assert outcome.plan is not None
    run = outcome.plan.step(RUN, "migrate-run")
    assert run.op == "replace" and "triggers" in run.forced_by
    assert violations(outcome.plan) == []


def test_the_migration_trigger_names_the_database_and_its_secret(plain: dict[str, str]) -> None:
    declared = declare(plain)
    triggers = _one(declared, RUN).property_dependencies["triggers"]
    assert _urns(declared, "db") <= triggers
    assert set(_one(declared, RUN).inputs["triggers"]) == {
        "artifact_sha256", "db_host", "db_secret_arn", "db_identity"}


# 2. Functions were repointed before the new database was usable.
@pytest.mark.parametrize(("change", "waits_for"), [
    ({"db_engine": "aurora-serverless"}, ("db-instance-0",)),
    ({"rds_proxy_enabled": "true"}, ("db-proxy-target",)),
    ({"db_engine": "aurora-serverless", "rds_proxy_enabled": "true", "db_multi_az": "true"},
     ("db-proxy-target", "db-instance-0", "db-instance-1")),
])
def test_the_host_given_to_code_and_migration_waits_until_the_database_serves(
        plain: dict[str, str], change: dict[str, str], waits_for: tuple[str, ...]) -> None:
    declared = declare({**plain, **change})
    ready = _urns(declared, *waits_for)
    assert len(ready) == len(waits_for)
    for function in (r for r in declared.resources.values() if r.typ == FUNCTION):
        assert ready <= _awaited(declared, function.property_dependencies["environment"]), \
            function.name
    run = _one(declared, RUN)
    assert ready <= _awaited(declared, run.property_dependencies["triggers"])
    assert ready <= _awaited(declared, run.dependencies)


def test_the_migration_may_retry_its_connection_for_most_of_lambdas_maximum(
        plain: dict[str, str]) -> None:
    assert MIGRATE_TIMEOUT_SECONDS == 900
    assert _one(declare(plain), FUNCTION, "migrate").inputs["timeout"] == 900


# 3. Major version changes failed; immediate-or-window was implicit; AWS's refusals came late.
def test_a_major_upgrade_is_allowed_applies_now_and_replaces_the_parameter_group_first(
        base_config: dict[str, str]) -> None:
    before = {**base_config, "db_apply_immediately": "false"}
    outcome = simulate(before, {**before, "db_engine_version": "17"})
    assert outcome.plan is not None
    params, db = outcome.plan.step("aws:rds/parameterGroup:ParameterGroup", "db-params"), \
        outcome.plan.step(INSTANCE, "db")
    assert params.op == "replace" and not params.resource.delete_before_replace
    assert db.op == "update" and params.resource.urn in \
        db.resource.property_dependencies["parameterGroupName"]
    assert db.resource.inputs["allowMajorVersionUpgrade"] is True
    assert db.resource.inputs["applyImmediately"] is True
    assert outcome.plan.before.resources[db.resource.urn].inputs["applyImmediately"] is False


@pytest.mark.parametrize(("engine", "typ"), [("rds", INSTANCE), ("aurora-serverless", CLUSTER)])
def test_immediate_or_window_is_the_setting_on_both_engines(
        base_config: dict[str, str], engine: str, typ: str) -> None:
    for setting in ("true", "false"):
        declared = declare({**base_config, "db_engine": engine,
                            "db_apply_immediately": setting})
        inputs = _one(declared, typ).inputs
        assert inputs["applyImmediately"] is (setting == "true")
        assert inputs["allowMajorVersionUpgrade"] is True


def _settings(version: str = "16", storage: int = 20, engine: str = "rds") -> OrderflowConfig:
    return OrderflowConfig(sender_email="o@example.com", db_engine_version=version,
                           db_allocated_storage_gb=storage,
                           db_engine="aurora-serverless" if engine != "rds" else "rds")


DEPLOYED = DeployedSettings(db_engine="rds", db_engine_version="16.4", db_allocated_storage_gb=50)


@pytest.mark.parametrize(("cfg", "message"), [
    (_settings("15", 50), "db_engine_version: 15 is older than the deployed 16.4"),
    (_settings("16.2", 50), "db_engine_version: 16.2 is older than the deployed 16.4"),
    (_settings("16.4", 40), "db_allocated_storage_gb: 40 is less than the deployed 50"),
])
def test_a_downgrade_or_a_storage_shrink_is_refused_naming_the_key(
        cfg: OrderflowConfig, message: str) -> None:
    with pytest.raises(ConfigError, match=re.escape(message)):
        check_transition(DEPLOYED, cfg)


@pytest.mark.parametrize("cfg", [_settings("16", 50), _settings("16.6", 50),
                                 _settings("17", 100), _settings("15", 20, "aurora")])
def test_same_major_bare_upgrades_growth_and_engine_switches_pass(cfg: OrderflowConfig) -> None:
    check_transition(DEPLOYED, cfg)
    assert is_major_upgrade(DEPLOYED, cfg) is (cfg.db_engine_version == "17")


# 4. Subnet zones moved with the processor mode and with AWS's zone lists.
def test_a_mode_switch_keeps_every_subnet(plain: dict[str, str]) -> None:
    for before, after in (("lambda", "fargate"), ("fargate", "lambda")):
        outcome = simulate({**plain, "processor": before}, {**plain, "processor": after})
        assert outcome.plan is not None
        assert {s.op for s in outcome.plan.steps if s.resource.typ == SUBNET} == {"same"}


def test_a_deployed_stack_keeps_its_zones_whatever_aws_lists_now(plain: dict[str, str]) -> None:
    declared = declare(plain, deployed={"deployed_settings": {
        "zones": ["eu-west-1b", "eu-west-1c"], "db_engine": "rds", "db_engine_version": "16",
        "db_allocated_storage_gb": 20}})
    # By name (private-0, private-1): the mocks record registrations as they arrive, in no
    # fixed order.
    subnets = sorted((r for r in declared.resources.values() if r.typ == SUBNET),
                     key=lambda r: r.name)
    assert [s.inputs["availabilityZone"] for s in subnets] == ["eu-west-1b", "eu-west-1c"]
    assert declared.outputs["deployed_settings"]["zones"] == ["eu-west-1b", "eu-west-1c"]


# 5. The processor_image override collided with the stack's own repository.
def test_with_the_override_the_stack_owns_no_repository(plain: dict[str, str]) -> None:
    declared = declare({**plain, "processor": "fargate", "processor_image": FARGATE_IMAGE},
                       docker=False)
    types = {r.typ for r in declared.resources.values()}
    assert not types & {"aws:ecr/repository:Repository", "aws:ecr/lifecyclePolicy:LifecyclePolicy"}
    assert "ecr_repository_url" not in declared.outputs
    assert declared.outputs["processor_image"] == FARGATE_IMAGE


# 6. Destroying one stack deleted another stack's SES identity.
def test_the_sender_identity_is_kept_when_the_stack_goes(plain: dict[str, str]) -> None:
    identity = _one(declare(plain), "aws:ses/emailIdentity:EmailIdentity")
    assert identity.retain_on_delete is True


# 7. Both engines named their final snapshot `<prefix>-db-final`.
def test_every_database_incarnation_names_its_own_final_snapshot(plain: dict[str, str]) -> None:
    rds = _one(declare(plain), INSTANCE)
    aurora = _one(declare({**plain, "db_engine": "aurora-serverless"}), CLUSTER)
    assert re.fullmatch(r"orderflow-test-db-final-\d{14}", rds.inputs["finalSnapshotIdentifier"])
    assert re.fullmatch(r"orderflow-test-cluster-final-\d{14}",
                        aurora.inputs["finalSnapshotIdentifier"])
    # Fixed at creation: later runs (a later stamp) change nothing on a live database.
    assert "finalSnapshotIdentifier" in rds.ignore_changes
    assert "finalSnapshotIdentifier" in aurora.ignore_changes


# 8. Smaller ones.
@pytest.mark.parametrize(("change", "rules"), [
    ({}, ("app-to-db-in", "app-to-db-out")),
    ({"rds_proxy_enabled": "true"}, ("app-to-proxy-in", "app-to-proxy-out", "proxy-to-db-in",
                                     "proxy-to-db-out", "proxy-to-endpoints-in",
                                     "proxy-to-endpoints-out")),
])
def test_the_migration_waits_for_every_security_group_rule_on_its_way(
        plain: dict[str, str], change: dict[str, str], rules: tuple[str, ...]) -> None:
    declared = declare({**plain, **change})
    needed = _urns(declared, *rules, "endpoint-https-from-app", "app-https-to-endpoints")
    assert len(needed) == len(rules) + 2
    assert needed <= _one(declared, RUN).dependencies


def test_the_proxy_can_reach_secrets_manager_through_its_endpoint(plain: dict[str, str]) -> None:
    declared = declare({**plain, "rds_proxy_enabled": "true"})
    egress = _one(declared, "aws:vpc/securityGroupEgressRule:SecurityGroupEgressRule",
                  "proxy-to-endpoints-out").inputs
    assert (egress["securityGroupId"], egress["referencedSecurityGroupId"],
            egress["fromPort"]) == ("proxy-sg-id", "endpoint-sg-id", 443)


def _tree(root: Path) -> Path:
    for directory in packaging.SOURCE_DIRS:
        (root / directory).mkdir(parents=True)
        (root / directory / "module.py").write_text(f"NAME = {directory!r}\n")
    return root


def test_the_source_fingerprint_follows_every_source_file_but_bytecode(tmp_path: Path) -> None:
    root = _tree(tmp_path / "tree")
    first = packaging.source_fingerprint(root)
    (root / "db" / "__pycache__").mkdir()
    (root / "db" / "__pycache__" / "module.cpython-311.pyc").write_bytes(b"\0")
    assert packaging.source_fingerprint(root) == first
    (root / "processor" / "module.py").write_text("NAME = 'changed'\n")
    assert packaging.source_fingerprint(root) != first


def test_an_artifact_built_from_another_tree_is_refused(tmp_path: Path) -> None:
    write_fake_artifact(tmp_path)
    (tmp_path / FINGERPRINT_FILE).write_text("0" * 64 + "\n")
    with pytest.raises(ArtifactError, match="built from another tree"):
        locate_artifact(str(tmp_path))
    (tmp_path / FINGERPRINT_FILE).write_text(packaging.source_fingerprint() + "\n")
    assert locate_artifact(str(tmp_path)).zip_path == tmp_path / "deployment.zip"


def test_the_default_artifact_is_rebuilt_when_it_is_stale(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    built: list[str] = []
    package = tmp_path / packaging.DEFAULT_ARTIFACT_DIR
    write_fake_artifact(package)
    (package / FINGERPRINT_FILE).write_text("stale\n")

    def make_package(directory: Path, why: str) -> None:
        built.append(why)
        (directory / FINGERPRINT_FILE).write_text(packaging.source_fingerprint())

    monkeypatch.setattr(packaging, "REPO_ROOT", tmp_path)
    monkeypatch.setattr(packaging, "_make_package", make_package)
    monkeypatch.setattr(packaging, "source_fingerprint", lambda: "tree")
    locate_artifact(packaging.DEFAULT_ARTIFACT_DIR)
    assert built == ["was built from another tree"]


def test_the_stack_rules_catch_what_the_old_program_did() -> None:
    """The simulator's rules can fail: a subnet re-created with its CIDR, a fixed name
    created before its old resource goes, a new database without a migration run, and
    two consumers."""
    def res(typ: str, logical: str, **inputs: object) -> Declared:
        return Declared(urn=f"urn:{typ}:{logical}", typ=typ, name=logical, inputs=dict(inputs),
                        provider="", property_dependencies={}, dependencies=frozenset(),
                        delete_before_replace=False, retain_on_delete=False,
                        ignore_changes=frozenset())
    subnet = res(SUBNET, "private-0", cidrBlock="10.40.1.0/24", availabilityZone="a")
    moved = res(SUBNET, "private-0", cidrBlock="10.40.1.0/24", availabilityZone="b")
    queue = res("aws:sqs/queue:Queue", "orders", name="orderflow-dev-orders")
    db = res(INSTANCE, "db", identifier="orderflow-dev-db")
    run = res(RUN, "migrate-run", triggers={"artifact_sha256": "x"})
    api = res(FUNCTION, "api", name="orderflow-dev-api")
    consumers = [res("aws:lambda/eventSourceMapping:EventSourceMapping", "sqs"),
                 res("aws:ecs/service:Service", "worker", name="w")]
    before = Declaration({}, {r.urn: r for r in (subnet, queue, run, api)}, {})
    after = Declaration({}, {r.urn: r for r in (moved, queue, db, run, api, *consumers)}, {})
    found = violations(Plan(before, after, [
        Step("replace", moved, frozenset({"availabilityZone"}), frozenset({"availabilityZone"})),
        Step("replace", queue, frozenset({"name"}), frozenset({"fifoQueue"})),
        Step("create", db), Step("same", run), Step("update", api, frozenset({"environment"})),
        *[Step("create", c) for c in consumers]]))
    assert found == [
        "subnet private-0 is replaced with the same CIDR 10.40.1.0/24 (availabilityZone)",
        "aws:sqs/queue:Queue orders is replaced under the same name 'orderflow-dev-orders' "
        "but created before the old one is deleted",
        "the database is new but the migration does not run again",
        "api changes before the new database is migrated",
        "worker changes before the new database is migrated",
        "2 queue consumers remain"]
