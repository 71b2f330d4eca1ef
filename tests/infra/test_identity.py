"""`auth: api_key | jwt` in the stack, under Pulumi mocks: the JWT authorizer function, its
invoke permission and cache TTL, the Cognito pool and client (or an external issuer), and
which routes need the API key, the authorizer, or nothing."""

from __future__ import annotations

import json
from typing import Any

import pytest

from orderflow_infra.config import ConfigError, load_config
from orderflow_infra.packaging import PUBLIC_PATHS
from orderflow_mocks.harness import Deployment, deploy, use_mocks

FUNCTION = "aws:lambda/function:Function"
POOL = "aws:cognito/userPool:UserPool"
CLIENT = "aws:cognito/userPoolClient:UserPoolClient"
GROUP = "aws:cognito/userGroup:UserGroup"
PERMISSION = "aws:lambda/permission:Permission"
# The ids the mocks give the pool and its client (`<name>-id`).
POOL_ID, CLIENT_ID = "user-pool-id", "user-pool-client-id"


@pytest.fixture(scope="module")
def cognito_stack(base_config: dict[str, str]) -> Deployment:
    return deploy({**base_config, "auth": "jwt", "jwt_authorizer_ttl_seconds": "120"})


@pytest.fixture(scope="module")
def external_stack(base_config: dict[str, str]) -> Deployment:
    return deploy({**base_config, "auth": "jwt", "jwt_issuer": "https://example.eu.auth0.com/",
                   "jwt_audience": "https://api.example.com"})


def _body(stack: Deployment) -> dict[str, Any]:
    (api,) = stack.of_type("aws:apigateway/restApi:RestApi")
    return dict(json.loads(api.inputs["body"]))


def _security(stack: Deployment) -> dict[tuple[str, str], list[dict[str, list[str]]]]:
    """Each non-preflight operation's `security` (empty: public)."""
    return {
        (path, method): op.get("security", [])
        for path, item in _body(stack)["paths"].items()
        for method, op in item.items()
        if op["x-amazon-apigateway-integration"]["type"] != "mock"
    }


def test_api_key_mode_keys_every_order_route_and_has_no_authorizer_or_user_pool(
        lambda_stack: Deployment) -> None:
    body = _body(lambda_stack)
    assert set(body["securityDefinitions"]) == {"api_key"}
    for (path, method), security in _security(lambda_stack).items():
        assert security == ([] if path in PUBLIC_PATHS else [{"api_key": []}]), (path, method)
    assert not lambda_stack.of_type(POOL) and not lambda_stack.of_type(CLIENT)
    assert "app.jwt_auth" not in {f.inputs["handler"] for f in lambda_stack.of_type(FUNCTION)}
    assert lambda_stack.named("api", FUNCTION).inputs["environment"]["variables"]["AUTH"] == \
        "api_key"
    assert "api_key_id" in lambda_stack.outputs and "user_pool_id" not in lambda_stack.outputs


def test_jwt_mode_guards_order_routes_with_the_authorizer_and_no_api_key(
        cognito_stack: Deployment) -> None:
    body = _body(cognito_stack)
    assert set(body["securityDefinitions"]) == {"jwt_auth"}
    for (path, method), security in _security(cognito_stack).items():
        assert security == ([] if path in PUBLIC_PATHS else [{"jwt_auth": []}]), (path, method)
    assert "x-amazon-apigateway-api-key-source" not in body
    assert not cognito_stack.of_type("aws:apigateway/apiKey:ApiKey")
    assert not cognito_stack.of_type("aws:apigateway/usagePlan:UsagePlan")
    assert "api_key_id" not in cognito_stack.outputs


def test_jwt_authorizer_is_the_app_handler_outside_the_vpc_with_cache_ttl_and_invoke_grant(
        cognito_stack: Deployment) -> None:
    authorizer = cognito_stack.named("jwt-auth", FUNCTION)
    assert authorizer.inputs["handler"] == "app.jwt_auth"
    assert "vpcConfig" not in authorizer.inputs  # it fetches the issuer's JWKS
    settings = _body(cognito_stack)["securityDefinitions"]["jwt_auth"]
    assert settings["name"] == "Authorization"
    assert settings["x-amazon-apigateway-authorizer"] == {
        "type": "token",
        "authorizerUri": authorizer.state["invokeArn"],
        "authorizerResultTtlInSeconds": 120,
    }
    grant = cognito_stack.named("jwt-auth-invoke", PERMISSION)
    assert grant.inputs["principal"] == "apigateway.amazonaws.com"
    assert grant.inputs["function"] == authorizer.state["name"]
    assert grant.inputs["sourceArn"].endswith("/authorizers/*")
    env = authorizer.inputs["environment"]["variables"]
    assert env["JWT_ISSUER"] == f"https://cognito-idp.eu-west-1.amazonaws.com/{POOL_ID}"
    assert env["JWT_AUDIENCE"] == CLIENT_ID
    assert env["JWT_ADMIN_GROUP"] == "orderflow-admins"
    assert cognito_stack.named("api", FUNCTION).inputs["environment"]["variables"]["AUTH"] == "jwt"


def test_jwt_mode_creates_a_cognito_pool_with_verified_emails_a_public_client_and_admins(
        cognito_stack: Deployment) -> None:
    pool = cognito_stack.named("user-pool", POOL)
    assert pool.inputs["usernameAttributes"] == ["email"]
    assert pool.inputs["autoVerifiedAttributes"] == ["email"]
    client = cognito_stack.named("user-pool-client", CLIENT)
    assert client.inputs["generateSecret"] is False
    assert "ALLOW_USER_SRP_AUTH" in client.inputs["explicitAuthFlows"]
    (group,) = cognito_stack.of_type(GROUP)
    assert group.inputs["name"] == "orderflow-admins"
    outputs = cognito_stack.outputs
    assert outputs["user_pool_id"] == POOL_ID
    assert outputs["user_pool_client_id"] == CLIENT_ID
    assert outputs["jwt_issuer"].endswith(POOL_ID)
    assert CLIENT_ID in outputs["test_token_command"]


def test_external_issuer_replaces_the_user_pool(external_stack: Deployment) -> None:
    assert not external_stack.of_type(POOL) and not external_stack.of_type(GROUP)
    env = external_stack.named("jwt-auth", FUNCTION).inputs["environment"]["variables"]
    assert env["JWT_ISSUER"] == "https://example.eu.auth0.com/"
    assert env["JWT_AUDIENCE"] == "https://api.example.com"
    assert external_stack.outputs["jwt_issuer"] == "https://example.eu.auth0.com/"
    assert "user_pool_id" not in external_stack.outputs


def test_unauthorized_gateway_response_keeps_the_json_shape_and_challenges_bearer(
        cognito_stack: Deployment) -> None:
    response = _body(cognito_stack)["x-amazon-apigateway-gateway-responses"]["UNAUTHORIZED"]
    assert response["statusCode"] == "401"
    assert json.loads(response["responseTemplates"]["application/json"])["error"]["code"] == \
        "UNAUTHORIZED"
    assert response["responseParameters"] == {
        "gatewayresponse.header.WWW-Authenticate": "'Bearer realm=\"orderflow\"'"}


@pytest.mark.parametrize(("extra", "key"), [
    ({"auth": "oauth"}, "auth"),
    ({"jwt_issuer": "https://issuer.example.com/"}, "jwt_audience"),
    ({"jwt_audience": "client"}, "jwt_issuer"),
    ({"jwt_issuer": "http://issuer.example.com/", "jwt_audience": "x"}, "jwt_issuer"),
    ({"jwt_authorizer_ttl_seconds": "3601"}, "jwt_authorizer_ttl_seconds"),
])
def test_identity_settings_are_checked_before_anything_is_declared(
        base_config: dict[str, str], extra: dict[str, str], key: str) -> None:
    use_mocks({**base_config, **extra})
    with pytest.raises(ConfigError, match=key):
        load_config()
