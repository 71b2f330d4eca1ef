"""Fixtures for the infrastructure tests: each processor mode is deployed once per session."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from orderflow_mocks.harness import FARGATE_IMAGE, REGION, Deployment, deploy, write_fake_artifact


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "slow: builds the real chalice artifact")


@pytest.fixture(scope="session")
def artifact_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    directory = tmp_path_factory.mktemp("package")
    write_fake_artifact(directory)
    return directory


@pytest.fixture(scope="session")
def base_config(artifact_dir: Path) -> dict[str, str]:
    """Minimal valid config; everything else takes the program's defaults."""
    return {
        "region": REGION,
        "environment": "test",
        "sender_email": "orders@example.com",
        "notification_email": "ops@example.com",
        "artifact_dir": str(artifact_dir),
    }


@pytest.fixture(scope="session")
def lambda_stack(base_config: dict[str, str]) -> Deployment:
    return deploy({**base_config, "processor": "lambda", "lambda_timeout_seconds": "40"})


@pytest.fixture(scope="session")
def fargate_stack(base_config: dict[str, str]) -> Deployment:
    """`processor: fargate` alone: the program builds and pushes the worker image."""
    return deploy({**base_config, "processor": "fargate"})


@pytest.fixture(scope="session")
def fargate_prebuilt_stack(base_config: dict[str, str]) -> Deployment:
    """Fargate with the `processor_image` override, on a machine without Docker."""
    return deploy({**base_config, "processor": "fargate", "processor_image": FARGATE_IMAGE},
                  docker=False)


@pytest.fixture(scope="session")
def aurora_stack(base_config: dict[str, str]) -> Deployment:
    return deploy({**base_config, "db_engine": "aurora-serverless", "db_min_capacity_acu": "1",
                   "db_max_capacity_acu": "8"})


@pytest.fixture(scope="session")
def aurora_proxy_stack(base_config: dict[str, str]) -> Deployment:
    return deploy({**base_config, "db_engine": "aurora-serverless", "rds_proxy_enabled": "true",
                   "db_multi_az": "true", "processor": "fargate"})


@pytest.fixture(params=["lambda", "fargate"])
def any_stack(request: pytest.FixtureRequest) -> Iterator[Deployment]:
    """Both processor modes, for properties that must hold in either."""
    yield request.getfixturevalue(f"{request.param}_stack")
