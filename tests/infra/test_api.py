"""The REST API is chalice's own swagger, pointed at the API Lambda and keyed as configured."""

from __future__ import annotations

import json
from typing import Any

import pytest
from chalice.deploy.swagger import CFNSwaggerGenerator

from orderflow_infra.packaging import ArtifactError, render_swagger
from tests.infra.harness import Deployment, chalice_test_app, deploy

FUNCTION = "aws:lambda/function:Function"


def _operations(body: dict[str, Any]) -> list[tuple[str, str, dict[str, Any]]]:
    return [(path, method, op) for path, item in body["paths"].items()
            for method, op in item.items()]


def test_rest_api_body_is_the_chalice_swagger_with_the_invoke_arn_swapped_in(
        any_stack: Deployment) -> None:
    (api,) = any_stack.of_type("aws:apigateway/restApi:RestApi")
    body = json.loads(api.inputs["body"])
    invoke_arn = any_stack.named("api", FUNCTION).state["invokeArn"]
    chalice_swagger = CFNSwaggerGenerator().generate_swagger(chalice_test_app())
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
            None if method == "options" else [{"api_key": []}])
        assert op.get("security") == expected, (method, path)
    (plan,) = any_stack.of_type("aws:apigateway/usagePlan:UsagePlan")
    assert plan.inputs["apiStages"] == [{"apiId": "api-id", "stage": "test"}]
    (key,) = any_stack.of_type("aws:apigateway/usagePlanKey:UsagePlanKey")
    assert key.inputs["keyId"] == "api-key-id"
    assert "value" not in any_stack.of_type("aws:apigateway/apiKey:ApiKey")[0].inputs
    # ...and the app's /openapi.json declares the key the gateway checks.
    assert any_stack.named("api", FUNCTION).inputs["environment"]["variables"][
        "API_KEY_REQUIRED"] == "true"


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
    assert set(deployment.inputs["triggers"]) == {"body", "responses"}


def test_gateway_errors_use_the_apps_json_error_shape(any_stack: Deployment) -> None:
    responses = {r.inputs["responseType"]: r.inputs
                 for r in any_stack.of_type("aws:apigateway/response:Response")}
    assert {"MISSING_AUTHENTICATION_TOKEN", "INVALID_API_KEY", "DEFAULT_4XX",
            "DEFAULT_5XX"} <= set(responses)
    assert responses["MISSING_AUTHENTICATION_TOKEN"]["statusCode"] == "404"
    for response in responses.values():
        body = json.loads(response["responseTemplates"]["application/json"])
        assert set(body) == {"error"}
        assert set(body["error"]) == {"code", "message"}


def test_unexpected_integration_uri_is_refused() -> None:
    swagger = CFNSwaggerGenerator().generate_swagger(chalice_test_app())
    swagger["paths"]["/orders"]["post"]["x-amazon-apigateway-integration"]["uri"] = "arn:other"
    with pytest.raises(ArtifactError, match="POST /orders: unexpected integration uri"):
        render_swagger(swagger, "arn:invoke", api_key_required=True)
