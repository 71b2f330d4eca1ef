"""The payment provider's wiring: the simulator by default; with Stripe, the secret key only
in Secrets Manager, its ARN in the app's environment, read rights for the functions and the
task that call the provider, and never the key itself in an input or output."""

from __future__ import annotations

import json
from typing import Any

import pytest

from orderflow_mocks.harness import Deployment, deploy
from tests.infra.test_security import _policies, _walk

STRIPE_KEY = "sk_live_never_in_plain_text_0123456789"
PROVIDER_ROLES = ("api-role", "process-orders-role", "sweep-outbox-role")


@pytest.fixture(scope="module")
def stripe_stack(base_config: dict[str, str]) -> Deployment:
    return deploy({**base_config, "payment_provider": "stripe", "stripe_secret_key": STRIPE_KEY})


@pytest.fixture(scope="module")
def stripe_fargate_stack(base_config: dict[str, str]) -> Deployment:
    return deploy({**base_config, "processor": "fargate", "payment_provider": "stripe",
                   "stripe_secret_key": STRIPE_KEY})


def test_the_default_stack_uses_the_simulator_and_has_no_payment_secret(
    lambda_stack: Deployment,
) -> None:
    assert lambda_stack.of_type("aws:secretsmanager/secret:Secret") == []
    for fn in lambda_stack.of_type("aws:lambda/function:Function"):
        assert fn.inputs["environment"]["variables"]["PAYMENT_PROVIDER"] == "simulator"


def test_stripe_functions_get_the_secret_arn_and_the_api_base_never_the_key(
    stripe_stack: Deployment,
) -> None:
    (secret,) = stripe_stack.of_type("aws:secretsmanager/secret:Secret")
    (version,) = stripe_stack.of_type("aws:secretsmanager/secretVersion:SecretVersion")
    assert version.inputs["secretId"] == f"{secret.name}-id"
    for fn in stripe_stack.of_type("aws:lambda/function:Function"):
        env = fn.inputs["environment"]["variables"]
        assert env["PAYMENT_PROVIDER"] == "stripe"
        assert env["STRIPE_SECRET_KEY_ARN"] == secret.state["arn"]
        assert env["STRIPE_API_BASE"] == "https://api.stripe.com"
        assert STRIPE_KEY not in json.dumps(env)


def test_the_stripe_key_appears_in_no_resource_input_but_its_secret_version_nor_output(
    stripe_stack: Deployment,
) -> None:
    holders = [
        r.name
        for r in stripe_stack.resources
        if any(STRIPE_KEY in str(value) for _, value in _walk(r.inputs))
    ]
    assert holders == ["stripe-secret-key-version"]
    assert STRIPE_KEY not in json.dumps(stripe_stack.outputs, default=str)


@pytest.mark.parametrize("role", PROVIDER_ROLES)
def test_functions_that_call_the_provider_may_read_the_stripe_secret(
    stripe_stack: Deployment, role: str
) -> None:
    (secret,) = stripe_stack.of_type("aws:secretsmanager/secret:Secret")
    statements = _policies(stripe_stack)[role]
    assert _reads(statements, secret.state["arn"])


def test_the_migration_function_may_not_read_the_stripe_secret(stripe_stack: Deployment) -> None:
    (secret,) = stripe_stack.of_type("aws:secretsmanager/secret:Secret")
    assert not _reads(_policies(stripe_stack)["migrate-role"], secret.state["arn"])


def test_the_fargate_task_gets_the_arn_and_may_read_the_secret(
    stripe_fargate_stack: Deployment,
) -> None:
    (secret,) = stripe_fargate_stack.of_type("aws:secretsmanager/secret:Secret")
    (task,) = stripe_fargate_stack.of_type("aws:ecs/taskDefinition:TaskDefinition")
    (container,) = json.loads(task.inputs["containerDefinitions"])
    env = {e["name"]: e["value"] for e in container["environment"]}
    assert env["STRIPE_SECRET_KEY_ARN"] == secret.state["arn"]
    assert STRIPE_KEY not in task.inputs["containerDefinitions"]
    assert _reads(_policies(stripe_fargate_stack)["worker-task-role"],
                  secret.state["arn"])


def test_stripe_without_a_secret_key_is_refused(base_config: dict[str, str]) -> None:
    with pytest.raises(Exception, match="stripe_secret_key"):
        deploy({**base_config, "payment_provider": "stripe"})


def _reads(statements: list[dict[str, Any]], arn: str) -> bool:
    return any(
        "secretsmanager:GetSecretValue" in s["Action"] and arn in s["Resource"]
        for s in statements
    )
