"""The REST API is chalice's own swagger, pointed at the API Lambda and keyed as configured."""

from __future__ import annotations

import hashlib
import json
import re
from pathlib import Path
from typing import Any

import pytest
from chalice.deploy.swagger import CFNSwaggerGenerator

from orderflow_infra.packaging import PUBLIC_PATHS, ArtifactError, render_swagger
from orderflow_mocks.harness import Deployment, chalice_app, deploy

FUNCTION = "aws:lambda/function:Function"
README = Path(__file__).resolve().parents[2] / "README.md"
# What API Gateway itself may answer, before the app runs, and the README's status and code
# for it (None: API Gateway's own status is kept). A missing or unknown key is reported to
# come back as INVALID_API_KEY, an unknown route or method as MISSING_AUTHENTICATION_TOKEN
# (README, "What has and has not been verified").
GATEWAY_ERRORS: dict[str, tuple[str | None, str]] = {
    "INVALID_API_KEY": ("401", "UNAUTHORIZED"),
    "MISSING_AUTHENTICATION_TOKEN": ("404", "NOT_FOUND"),
    "RESOURCE_NOT_FOUND": ("404", "NOT_FOUND"),
    "ACCESS_DENIED": ("403", "FORBIDDEN"),
    "REQUEST_TOO_LARGE": ("413", "PAYLOAD_TOO_LARGE"),
    "UNSUPPORTED_MEDIA_TYPE": ("415", "UNSUPPORTED_MEDIA_TYPE"),
    "THROTTLED": ("429", "THROTTLED"),
    "QUOTA_EXCEEDED": ("429", "QUOTA_EXCEEDED"),
    "INTEGRATION_TIMEOUT": ("504", "GATEWAY_TIMEOUT"),
    "DEFAULT_4XX": (None, "BAD_REQUEST"),
    "DEFAULT_5XX": (None, "INTERNAL_ERROR"),
}


def _operations(body: dict[str, Any]) -> list[tuple[str, str, dict[str, Any]]]:
    return [(path, method, op) for path, item in body["paths"].items()
            for method, op in item.items()]


def test_rest_api_body_is_the_chalice_swagger_with_the_invoke_arn_swapped_in(
        any_stack: Deployment) -> None:
    (api,) = any_stack.of_type("aws:apigateway/restApi:RestApi")
    body = json.loads(api.inputs["body"])
    invoke_arn = any_stack.named("api", FUNCTION).state["invokeArn"]
    chalice_swagger = CFNSwaggerGenerator().generate_swagger(chalice_app())
    assert "Fn::Sub" not in api.inputs["body"]
    assert set(body["paths"]) == set(chalice_swagger["paths"])
    for path, method, op in _operations(body):
        original = chalice_swagger["paths"][path][method]
        integration = op["x-amazon-apigateway-integration"]
        if integration["type"] == "mock":
            assert integration == original["x-amazon-apigateway-integration"]
            continue
        assert integration == {**original["x-amazon-apigateway-integration"],
                               "uri": invoke_arn}
        assert {k: v for k, v in op.items() if k not in ("x-amazon-apigateway-integration",
                                                         "security")} == \
            {k: v for k, v in original.items() if k != "x-amazon-apigateway-integration"}


def test_api_key_is_required_on_every_route_but_cors_preflight(any_stack: Deployment) -> None:
    (api,) = any_stack.of_type("aws:apigateway/restApi:RestApi")
    body = json.loads(api.inputs["body"])
    assert body["securityDefinitions"]["api_key"] == {"type": "apiKey", "name": "x-api-key",
                                                      "in": "header"}
    assert body["x-amazon-apigateway-api-key-source"] == "HEADER"
    for path, method, op in _operations(body):
        expected: list[dict[str, list[str]]] | None = (
            None if method == "options" or path in PUBLIC_PATHS else [{"api_key": []}])
        assert op.get("security") == expected, (method, path)
    (plan,) = any_stack.of_type("aws:apigateway/usagePlan:UsagePlan")
    assert plan.inputs["apiStages"] == [{"apiId": "api-id", "stage": "test"}]
    (key,) = any_stack.of_type("aws:apigateway/usagePlanKey:UsagePlanKey")
    assert key.inputs["keyId"] == "api-key-id"
    assert "value" not in any_stack.of_type("aws:apigateway/apiKey:ApiKey")[0].inputs
    # ...and the app's /openapi.json declares the key the gateway checks.
    assert any_stack.named("api", FUNCTION).inputs["environment"]["variables"][
        "API_KEY_REQUIRED"] == "true"


def test_the_rest_api_serves_every_route_of_chalice_app_and_docs_and_openapi_need_no_key(
        lambda_stack: Deployment) -> None:
    """The stack is built from the real chalice_app/app.py, so a route added there (or a
    public page such as /docs) is checked here as API Gateway will serve it."""
    (api,) = lambda_stack.of_type("aws:apigateway/restApi:RestApi")
    body = json.loads(api.inputs["body"])
    assert set(body["paths"]) == set(chalice_app().routes)
    assert {"/docs", "/openapi.json", "/orders/{order_id}/cancel"} <= set(body["paths"])
    for path in ("/docs", "/openapi.json"):
        assert "security" not in body["paths"][path]["get"], path
    assert body["paths"]["/orders"]["get"]["security"] == [{"api_key": []}]


def test_the_openapi_document_is_public_even_where_chalice_asked_for_a_key() -> None:
    """API Gateway demands a key exactly where `security` lists it, so none may remain."""
    swagger = CFNSwaggerGenerator().generate_swagger(chalice_app())
    swagger["paths"]["/openapi.json"]["get"]["security"] = [{"api_key": []}]
    body = render_swagger(swagger, "arn:invoke", api_key_required=True)
    assert "/openapi.json" in PUBLIC_PATHS
    assert "security" not in body["paths"]["/openapi.json"]["get"]
    assert body["paths"]["/orders"]["post"]["security"] == [{"api_key": []}]


def test_no_key_plan_or_security_when_api_key_is_not_required(
        base_config: dict[str, str]) -> None:
    stack = deploy({**base_config, "api_key_required": "false"})
    body = json.loads(stack.of_type("aws:apigateway/restApi:RestApi")[0].inputs["body"])
    assert "securityDefinitions" not in body
    assert not [op for _, _, op in _operations(body) if "security" in op]
    assert not stack.of_type("aws:apigateway/apiKey:ApiKey")
    assert not stack.of_type("aws:apigateway/usagePlan:UsagePlan")
    assert "api_key_id" not in stack.outputs
    assert stack.named("api", FUNCTION).inputs["environment"]["variables"][
        "API_KEY_REQUIRED"] == "false"


def test_stage_is_named_after_the_environment_and_api_gateway_may_invoke(
        any_stack: Deployment) -> None:
    (stage,) = any_stack.of_type("aws:apigateway/stage:Stage")
    assert stage.inputs["stageName"] == "test"
    permission = any_stack.named("api-invoke").inputs
    assert permission["principal"] == "apigateway.amazonaws.com"
    assert permission["function"] == "orderflow-test-api"
    assert permission["sourceArn"] == "arn:aws:execute-api:eu-west-1:123456789012:api-id/*"
    (deployment,) = any_stack.of_type("aws:apigateway/deployment:Deployment")
    (api,) = any_stack.of_type("aws:apigateway/restApi:RestApi")
    # The body carries the gateway responses, so its hash redeploys when they change.
    assert deployment.inputs["triggers"] == {
        "body": hashlib.sha256(api.inputs["body"].encode()).hexdigest()}


def _readme_error_table() -> set[tuple[str, str]]:
    """(status, code) pairs of the README's API error table."""
    section = README.read_text().split("| Status | `code` | When |", 1)[1].split("\n\n", 1)[0]
    return {(row.split("|")[1].strip(), code)
            for row in section.splitlines()[2:]
            for code in re.findall(r"`([A-Z_]+)`", row.split("|")[2])}


@pytest.mark.parametrize("api_key_required", ["true", "false"])
def test_every_gateway_error_the_readme_promises_is_in_the_rest_api_body(
        base_config: dict[str, str], api_key_required: str) -> None:
    """Separate Response resources would vanish on the next body update; the body keeps them."""
    stack = deploy({**base_config, "api_key_required": api_key_required})
    assert not stack.of_type("aws:apigateway/response:Response")
    (api,) = stack.of_type("aws:apigateway/restApi:RestApi")
    responses = json.loads(api.inputs["body"])["x-amazon-apigateway-gateway-responses"]
    assert set(responses) == set(GATEWAY_ERRORS)
    readme = _readme_error_table()
    for rtype, (status, code) in GATEWAY_ERRORS.items():
        response = responses[rtype]
        assert response.get("statusCode") == status, rtype
        assert set(response["responseTemplates"]) == {"application/json"}, rtype
        template = json.loads(response["responseTemplates"]["application/json"])
        assert set(template) == {"error"} and set(template["error"]) == {"code", "message"}
        assert template["error"]["code"] == code, rtype
        assert template["error"]["message"], rtype
        documented = {c for _, c in readme} if status is None else \
            {c for s, c in readme if s == status}
        assert code in documented, f"README's error table lacks {status} {code}"


def test_unexpected_integration_uri_is_refused() -> None:
    swagger = CFNSwaggerGenerator().generate_swagger(chalice_app())
    swagger["paths"]["/orders"]["post"]["x-amazon-apigateway-integration"]["uri"] = "arn:other"
    with pytest.raises(ArtifactError, match="POST /orders: unexpected integration uri"):
        render_swagger(swagger, "arn:invoke", api_key_required=True)
