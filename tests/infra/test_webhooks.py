"""The Stripe webhook in the stack: a public route, its signing secret in Secrets Manager
(readable by the API function alone), and the URL to register in Stripe as a stack output."""

from __future__ import annotations

import json

import pytest
from pulumi.runtime import rpc

from orderflow_infra.packaging import WEBHOOK_PATH
from orderflow_mocks.harness import Deployment, deploy

FUNCTION = "aws:lambda/function:Function"
SECRET_VALUE = "whsec_never_in_plain_text"


@pytest.fixture(scope="module")
def webhook_stack(base_config: dict[str, str]) -> Deployment:
    return deploy({**base_config, "stripe_webhook_secret": SECRET_VALUE})


def _operation(stack: Deployment) -> dict[str, object]:
    (api,) = stack.of_type("aws:apigateway/restApi:RestApi")
    return dict(json.loads(api.inputs["body"])["paths"][WEBHOOK_PATH]["post"])


@pytest.mark.parametrize("required", ["true", "false"])
def test_the_webhook_route_asks_for_no_api_key_whether_or_not_keys_are_required(
        base_config: dict[str, str], required: str) -> None:
    stack = deploy({**base_config, "api_key_required": required})
    assert "security" not in _operation(stack)


def test_the_signing_secret_is_stored_in_secrets_manager_and_only_its_arn_reaches_the_api(
        webhook_stack: Deployment) -> None:
    (secret,) = webhook_stack.of_type("aws:secretsmanager/secret:Secret")
    assert "name" not in secret.inputs  # auto-named: a deleted name stays reserved for days
    (version,) = webhook_stack.of_type("aws:secretsmanager/secretVersion:SecretVersion")
    # Registered as a Pulumi secret (encrypted in the state), not as a plain string.
    assert version.inputs["secretString"] == {rpc._special_sig_key: rpc._special_secret_sig,
                                              "value": SECRET_VALUE}
    assert version.inputs["secretId"] == "stripe-webhook-secret-id"
    api_env = webhook_stack.named("api", FUNCTION).inputs["environment"]["variables"]
    assert api_env["STRIPE_WEBHOOK_SECRET_ARN"] == secret.state["arn"]
    for function in webhook_stack.of_type(FUNCTION):
        variables = function.inputs["environment"]["variables"]
        assert SECRET_VALUE not in json.dumps(variables)
        if function.name != "api":
            assert "STRIPE_WEBHOOK_SECRET_ARN" not in variables
    assert SECRET_VALUE not in json.dumps(webhook_stack.outputs)


def test_only_the_api_role_may_read_the_signing_secret(webhook_stack: Deployment) -> None:
    (secret,) = webhook_stack.of_type("aws:secretsmanager/secret:Secret")
    readers = [
        policy.name for policy in webhook_stack.of_type("aws:iam/rolePolicy:RolePolicy")
        if secret.state["arn"] in json.dumps(policy.inputs["policy"])
    ]
    assert readers == ["api-role-policy"]


def test_without_a_signing_secret_no_secret_is_declared_and_the_api_gets_no_arn(
        lambda_stack: Deployment) -> None:
    assert lambda_stack.of_type("aws:secretsmanager/secret:Secret") == []
    api_env = lambda_stack.named("api", FUNCTION).inputs["environment"]["variables"]
    assert "STRIPE_WEBHOOK_SECRET_ARN" not in api_env


def test_the_stack_outputs_the_webhook_url_of_its_stage(lambda_stack: Deployment) -> None:
    assert lambda_stack.outputs["stripe_webhook_url"] == (
        "https://api-id.execute-api.eu-west-1.amazonaws.com/test/webhooks/stripe")
