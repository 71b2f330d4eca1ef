"""Invalid configuration stops the program with a message naming the key."""

from __future__ import annotations

import pulumi
import pytest

from orderflow_infra.config import ConfigError, OrderflowConfig, load_config
from orderflow_mocks.harness import FARGATE_IMAGE, deploy, use_mocks


def _load(config: dict[str, str]) -> OrderflowConfig:
    use_mocks(config)
    return load_config(pulumi.Config("orderflow"))


def test_defaults_match_the_documented_ones(base_config: dict[str, str]) -> None:
    cfg = _load(base_config)
    assert (cfg.processor, cfg.dlq_max_receive_count, cfg.api_key_required,
            cfg.rds_proxy_enabled, cfg.tracing_enabled) == ("lambda", 5, True, False, False)
    assert cfg.queue_visibility_timeout_seconds == 6 * cfg.lambda_timeout_seconds


def test_unknown_processor_stops_the_whole_program_naming_the_key(
        base_config: dict[str, str]) -> None:
    with pytest.raises(ConfigError, match=r"orderflow:processor: expected one of lambda, "
                                          r"fargate \(got 'foo'\)"):
        deploy({**base_config, "processor": "foo"})


@pytest.mark.parametrize(("key", "value", "message"), [
    ("sender_email", "", "orderflow:sender_email: required"),
    ("sender_email", "not-an-email", "orderflow:sender_email: expected an email"),
    ("db_engine", "aurora", "orderflow:db_engine: expected one of rds, aurora-serverless"),
    ("db_min_capacity_acu", "0", "orderflow:db_min_capacity_acu: expected 0.5 to 256 ACUs"),
    ("db_max_capacity_acu", "4.2", "orderflow:db_max_capacity_acu: expected 0.5 to 256 ACUs"),
    ("db_engine_version", "15", "orderflow:db_engine_version: PostgreSQL 16 or newer"),
    ("db_multi_az", "yes", "orderflow:db_multi_az: expected true or false"),
    ("lambda_timeout_seconds", "901", "orderflow:lambda_timeout_seconds: expected an integer"),
    ("sqs_max_concurrency", "1", "orderflow:sqs_max_concurrency: expected an integer between 2"),
    ("log_retention_days", "10", "orderflow:log_retention_days: expected one of"),
    ("ecs_memory_mb", "4096", "orderflow:ecs_memory_mb: with ecs_cpu=256"),
    ("ecs_desired_count", "9", "orderflow:ecs_desired_count: expected ecs_min_count"),
    ("environment", "Prod", "orderflow:environment: expected lowercase"),
    # `<project>-<env>-db` must be a valid RDS identifier: no trailing or doubled hyphen.
    ("environment", "dev-", "orderflow:environment: expected lowercase letters, digits and "
                            "single hyphens"),
    ("environment", "dev--blue", "orderflow:environment: expected lowercase"),
    ("environment", "-dev", "orderflow:environment: expected lowercase"),
    ("environment", "a" * 21, "orderflow:environment: expected lowercase"),
    ("project_name", "orders-", "orderflow:project_name: expected lowercase"),
    ("project_name", "order--flow", "orderflow:project_name: expected lowercase"),
    ("processor_image", "docker.io/library/python:3.11",
     "orderflow:processor_image: expected an ECR image URI in eu-west-1"),
    ("app_env", '{"DB_HOST": "x"}', "orderflow:app_env: DB_HOST is set by the stack"),
    # Lambda refuses its reserved keys at CreateFunction; AWS_* would also redirect boto3.
    ("app_env", '{"AWS_REGION": "us-east-1"}', "orderflow:app_env: AWS_REGION is reserved"),
    ("app_env", '{"AWS_ENDPOINT_URL": "http://x"}', "orderflow:app_env: AWS_ENDPOINT_URL is "
                                                     "reserved by the Lambda and ECS runtimes"),
    ("app_env", '{"AWS_LAMBDA_EXEC_WRAPPER": "/x"}', "AWS_LAMBDA_EXEC_WRAPPER is reserved"),
    ("app_env", '{"LAMBDA_TASK_ROOT": "/x"}', "orderflow:app_env: LAMBDA_TASK_ROOT is reserved"),
    ("app_env", '{"TZ": "UTC"}', "orderflow:app_env: TZ is reserved"),
    ("app_env", '{"_HANDLER": "app.app"}', "orderflow:app_env: '_HANDLER' is not an UPPER_SNAKE"),
])

def test_invalid_values_are_rejected_naming_the_key(
        base_config: dict[str, str], key: str, value: str, message: str) -> None:
    config = {**base_config, "processor": "fargate", "processor_image": FARGATE_IMAGE,
              key: value}
    if key == "sender_email" and not value:
        del config["sender_email"]
    with pytest.raises(ConfigError, match=message):
        _load(config)


@pytest.mark.parametrize("name", ["dev", "prod", "blue-green", "e2e-2", "a1"])
def test_valid_environment_names_are_accepted(base_config: dict[str, str], name: str) -> None:
    assert _load({**base_config, "environment": name}).environment == name


def test_extra_app_environment_reaches_the_functions(base_config: dict[str, str]) -> None:
    stack = deploy({**base_config, "app_env": '{"PAYMENT_DECLINE_RATE": 0.1}'})
    for fn in stack.of_type("aws:lambda/function:Function"):
        assert fn.inputs["environment"]["variables"]["PAYMENT_DECLINE_RATE"] == "0.1"


def test_aurora_capacity_range_must_not_be_inverted(base_config: dict[str, str]) -> None:
    with pytest.raises(ConfigError, match=r"orderflow:db_max_capacity_acu: expected at least "
                                          r"db_min_capacity_acu \(4\) \(got 2\)"):
        _load({**base_config, "db_min_capacity_acu": "4", "db_max_capacity_acu": "2"})


def test_the_default_database_is_one_rds_instance(base_config: dict[str, str]) -> None:
    cfg = _load(base_config)
    assert (cfg.db_engine, cfg.db_min_capacity_acu, cfg.db_max_capacity_acu) == (
        "rds", 0.5, 4.0)
