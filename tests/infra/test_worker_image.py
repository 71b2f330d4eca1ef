"""`processor: fargate` is the whole switch: the program builds, pushes and runs the image.

The image itself is exercised without Docker in tests/integration/test_worker_image.py.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from collections import Counter
from pathlib import Path
from typing import Any

import pulumi
import pytest
from pulumi.runtime import rpc

from orderflow_infra import worker_image
from orderflow_infra.config import ConfigError
from orderflow_mocks.harness import (
    ECR_TOKEN_PASSWORD,
    FARGATE_IMAGE,
    IMAGE_DIGEST,
    Deployment,
    Recorded,
    deploy,
    use_mocks,
)

REPO = Path(__file__).resolve().parents[2]
IMAGE = "docker-build:index:Image"
SERVICE = "aws:ecs/service:Service"
ESM = "aws:lambda/eventSourceMapping:EventSourceMapping"
REPOSITORY = "aws:ecr/repository:Repository"
TASK = "aws:ecs/taskDefinition:TaskDefinition"


def _container(stack: Deployment) -> dict[str, object]:
    (task,) = stack.of_type(TASK)
    (container,) = json.loads(task.inputs["containerDefinitions"])
    return container


def _image(stack: Deployment) -> Recorded:
    (image,) = stack.of_type(IMAGE)
    return image


def test_the_image_is_built_from_the_repository_root_with_the_processor_dockerfile(
    fargate_stack: Deployment,
) -> None:
    inputs = _image(fargate_stack).inputs
    context = Path(os.getcwd(), inputs["context"]["location"]).resolve()
    assert context == REPO
    assert not Path(inputs["context"]["location"]).is_absolute()  # no checkout path in state
    dockerfile = Path(os.getcwd(), inputs["dockerfile"]["location"]).resolve()
    assert dockerfile == REPO / "pulumi" / "worker-image" / "Dockerfile"


def test_the_image_is_built_for_the_task_definitions_architecture(
    fargate_stack: Deployment,
) -> None:
    (task,) = fargate_stack.of_type(TASK)
    architecture = task.inputs["runtimePlatform"]["cpuArchitecture"]
    expected = {"X86_64": "linux/amd64", "ARM64": "linux/arm64"}[architecture]
    assert _image(fargate_stack).inputs["platforms"] == [expected]


def test_the_image_is_pushed_to_the_stacks_repository_with_ecr_credentials(
    fargate_stack: Deployment,
) -> None:
    (repository,) = fargate_stack.of_type(REPOSITORY)
    url = repository.state["repositoryUrl"]
    inputs = _image(fargate_stack).inputs
    assert inputs["push"] is True
    assert inputs["tags"] == [f"{url}:latest"]
    # The 12-hour ECR token reaches the engine as a secret, so state keeps it encrypted.
    registries = inputs["registries"]
    assert registries[rpc._special_sig_key] == rpc._special_secret_sig
    (registry,) = registries["value"]
    assert (registry["address"], registry["username"], registry["password"]) == (
        url, "AWS", ECR_TOKEN_PASSWORD)


def test_the_task_runs_the_pushed_image_by_digest(fargate_stack: Deployment) -> None:
    (repository,) = fargate_stack.of_type(REPOSITORY)
    image = _container(fargate_stack)["image"]
    assert image == f"{repository.state['repositoryUrl']}@{IMAGE_DIGEST}"
    assert fargate_stack.outputs["processor_image"] == image
    pulls = _pull_resources(fargate_stack)
    assert pulls == [repository.state["arn"]]


def _pull_resources(stack: Deployment) -> list[str]:
    (role,) = [p for p in stack.of_type("aws:iam/rolePolicy:RolePolicy")
               if p.name.startswith("worker-execution-role")]
    statements = json.loads(role.inputs["policy"])["Statement"]
    (pull,) = [s for s in statements if "ecr:BatchGetImage" in s["Action"]]
    return pull["Resource"]


def test_without_docker_or_an_image_the_program_stops_before_creating_anything(
    base_config: dict[str, str],
) -> None:
    mocks, _ = use_mocks({**base_config, "processor": "fargate"})

    @pulumi.runtime.test
    def run() -> None:
        from orderflow_infra import stack

        stack.main(docker=lambda: False)

    with pytest.raises(ConfigError) as error:
        run()
    message = str(error.value)
    assert "Docker" in message and "pulumi config set processor_image" in message
    assert mocks.resources == []


def test_with_the_override_nothing_is_built_and_the_task_runs_that_image(
    fargate_prebuilt_stack: Deployment,
) -> None:
    assert fargate_prebuilt_stack.of_type(IMAGE) == []
    assert _container(fargate_prebuilt_stack)["image"] == FARGATE_IMAGE
    assert _pull_resources(fargate_prebuilt_stack) == [
        "arn:aws:ecr:eu-west-1:123456789012:repository/orderflow-test-processor"]


@pytest.mark.parametrize(("stack_name", "mapping", "service"), [
    ("lambda_stack", 1, 0), ("fargate_stack", 0, 1), ("fargate_prebuilt_stack", 0, 1)])
def test_exactly_one_queue_consumer_in_each_mode(
    request: pytest.FixtureRequest, stack_name: str, mapping: int, service: int,
) -> None:
    stack: Deployment = request.getfixturevalue(stack_name)
    counts = Counter(r.typ for r in stack.resources)
    assert (counts[ESM], counts[SERVICE]) == (mapping, service)


def test_switching_back_to_lambda_leaves_no_image_service_or_repository(
    lambda_stack: Deployment, fargate_stack: Deployment,
) -> None:
    # Pulumi deletes what the program no longer declares; the repository may hold images.
    (repository,) = fargate_stack.of_type(REPOSITORY)
    assert repository.inputs["forceDelete"] is True
    declared = {r.typ for r in lambda_stack.resources}
    assert not declared & {IMAGE, SERVICE, REPOSITORY, TASK, "aws:ecs/cluster:Cluster"}


def test_the_image_is_only_dropped_from_state_on_delete(
    base_config: dict[str, str], monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Deleting it would need a Docker client; the force-deleted repository removes the
    pushed images, so switching back to lambda works on a machine without Docker."""
    retained: dict[str, bool] = {}
    register = pulumi.runtime.mocks.MockMonitor.RegisterResource

    def recording(monitor: Any, request: Any) -> Any:
        retained[request.name] = request.retainOnDelete
        return register(monitor, request)

    monkeypatch.setattr(pulumi.runtime.mocks.MockMonitor, "RegisterResource", recording)
    deploy({**base_config, "processor": "fargate"})
    assert retained["worker-image"] is True
    assert retained["processor-repo"] is False  # deleted for real, with its images


@pytest.mark.parametrize(("env", "socket", "docker_cli", "expected"), [
    ({}, False, False, False),
    ({"DOCKER_HOST": "tcp://builder:2376"}, False, False, True),
    ({}, True, False, True),
    ({}, False, True, True),
])
def test_docker_is_detected_from_host_socket_or_cli(
    tmp_path: Path, env: dict[str, str], socket: bool, docker_cli: bool, expected: bool,
) -> None:
    path = tmp_path / "docker.sock"
    if socket:
        path.touch()
    found = worker_image.docker_available(
        env=env, socket=path, which=lambda name: "/usr/bin/docker" if docker_cli else None)
    assert found is expected


def _dockerfile_copies() -> list[str]:
    """What the Dockerfile copies or bind-mounts from the context."""
    text = (REPO / "pulumi" / "worker-image" / "Dockerfile").read_text()
    sources = re.findall(r"--mount=type=bind,source=([^,\s]+)", text)
    for line in text.splitlines():
        if line.startswith("COPY "):
            *parts, _destination = line.split()[1:]
            sources += [part.rstrip("/") for part in parts]
    return sources


def test_the_build_context_is_what_the_dockerfile_uses_without_development_only_code() -> None:
    ignore = (REPO / "pulumi" / "worker-image" / "Dockerfile.dockerignore").read_text()
    patterns = [line for line in ignore.splitlines() if line and not line.startswith("#")]
    assert patterns[0] == "*"  # everything else (.venv, .local, tests, build) stays out
    included = sorted(p[1:].rstrip("/") for p in patterns if p.startswith("!"))
    copied = _dockerfile_copies()
    assert set(included) <= set(copied)
    assert all(c in included or any(c.startswith(f"{i}/") for i in included) for c in copied)
    assert {"**/__pycache__", "**/*.pyc", "processor/devstack/"} <= set(patterns)


def test_the_dockerfile_passes_hadolint() -> None:
    hadolint = Path(sys.executable).with_name("hadolint")
    dockerfile = REPO / "pulumi" / "worker-image" / "Dockerfile"
    result = subprocess.run([str(hadolint), "--no-color", str(dockerfile)],
                            capture_output=True, text=True, check=False)
    assert result.returncode == 0, result.stdout + result.stderr


def test_the_readme_switch_is_the_two_commands() -> None:
    readme = (REPO / "README.md").read_text()
    section = readme.split("### Switching the processor to Fargate", 1)[1].split("\n### ", 1)[0]
    assert re.search(r"pulumi config set processor fargate\s*\n\s*pulumi up", section)
    assert "docker push" not in section and "update-service" not in section
