"""The example stack files: each passes config validation and deploys under the mocks."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pulumi
import pytest
import yaml

from orderflow_infra.config import load_config
from orderflow_mocks.harness import Deployment, deploy, use_mocks

REPO_ROOT = Path(__file__).resolve().parents[2]
STACK_FILES = sorted(REPO_ROOT.glob("Pulumi.*.yaml"))


def _config(path: Path) -> dict[str, str]:
    """`orderflow:*` keys as the CLI hands them to the program: strings, objects as JSON."""
    raw: dict[str, Any] = yaml.safe_load(path.read_text())["config"]
    config: dict[str, str] = {}
    for key, value in raw.items():
        namespace, _, name = key.partition(":")
        assert namespace == "orderflow", f"{path.name}: {key} is not read by the program"
        if isinstance(value, bool):
            config[name] = str(value).lower()
        elif isinstance(value, dict | list):
            config[name] = json.dumps(value)
        else:
            config[name] = str(value)
    return config


@pytest.fixture(scope="module", params=STACK_FILES, ids=[p.name for p in STACK_FILES])
def stack_file(request: pytest.FixtureRequest, artifact_dir: Path
               ) -> tuple[dict[str, str], Deployment]:
    config = {**_config(request.param), "artifact_dir": str(artifact_dir)}
    return config, deploy(config)


def test_both_example_stacks_exist() -> None:
    assert [p.name for p in STACK_FILES] == ["Pulumi.dev.yaml", "Pulumi.prod.yaml"]


def test_every_key_of_a_stack_file_passes_validation_and_is_applied(
        stack_file: tuple[dict[str, str], Deployment]) -> None:
    config, stack = stack_file
    use_mocks(config)
    cfg = load_config(pulumi.Config("orderflow"))
    for key, value in config.items():
        applied = getattr(cfg, key)
        expected = str(applied).lower() if isinstance(applied, bool) else str(applied)
        assert expected == value, key
    (db,) = stack.of_type("aws:rds/instance:Instance")
    assert db.inputs["identifier"] == f"orderflow-{config['environment']}-db"
    assert stack.outputs["api_url"].endswith(f"/{config['environment']}/orders")


def test_the_prod_example_is_built_for_production(artifact_dir: Path) -> None:
    config = {**_config(REPO_ROOT / "Pulumi.prod.yaml"), "artifact_dir": str(artifact_dir)}
    stack = deploy(config)
    (db,) = stack.of_type("aws:rds/instance:Instance")
    assert db.inputs["multiAz"] is True
    assert db.inputs["deletionProtection"] is True
    assert db.inputs["backupRetentionPeriod"] >= 14
    assert len(stack.of_type("aws:rds/proxy:Proxy")) == 1
    subscriptions = {s.inputs["endpoint"]: s.inputs["topic"]
                     for s in stack.of_type("aws:sns/topicSubscription:TopicSubscription")}
    assert subscriptions[config["alarm_email"]] == stack.outputs["operations_topic_arn"]
    assert [s.inputs["availabilityZone"] for s in stack.of_type("aws:ec2/subnet:Subnet")] == \
        ["us-east-1b", "us-east-1c"]  # never use1-az3 (us-east-1a in the mocks)
