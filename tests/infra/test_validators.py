"""What AWS would check at `pulumi up`, checked here by the validators AWS's formats have.

The REST API body must be Swagger 2.0 (API Gateway imports it as such), and every IAM
policy document the program renders must pass `parliament`, apart from findings listed
below with the reason each is tolerated.
"""

from __future__ import annotations

import json
from typing import Any

import parliament
import pytest
from chalice.deploy.swagger import CFNSwaggerGenerator
from openapi_spec_validator import validate
from openapi_spec_validator.validation import OpenAPIV2SpecValidator
from openapi_spec_validator.validation.exceptions import OpenAPIValidationError

from app import app as real_app
from orderflow_infra.api import rest_api_body
from orderflow_mocks.harness import FARGATE_IMAGE, Deployment, deploy

INVOKE_ARN = ("arn:aws:apigateway:eu-west-1:lambda:path/2015-03-31/functions/"
              "arn:aws:lambda:eu-west-1:123456789012:function:orderflow-test-api/invocations")
ENI_ACTIONS = ("ec2:AssignPrivateIpAddresses", "ec2:CreateNetworkInterface",
               "ec2:DeleteNetworkInterface", "ec2:UnassignPrivateIpAddresses")
# (document kind, parliament issue, detail) -> why it is accepted.
TOLERATED: dict[tuple[str, str, str], str] = {
    ("trust", "MALFORMED", "Statement contains neither Resource nor NotResource"):
        "A role's trust policy names a Principal and, by IAM's grammar, no Resource; "
        "parliament lints every document as an identity policy.",
    ("permissions", "RESOURCE_STAR", repr(list(ENI_ACTIONS))):
        "A Lambda in a VPC creates and removes its ENIs in subnets and security groups "
        "chosen at run time; AWS's own AWSLambdaVPCAccessExecutionRole grants these on *.",
}


@pytest.fixture(scope="module")
def variants(base_config: dict[str, str]) -> list[Deployment]:
    """Every optional branch that renders policies: proxy, tracing, Fargate, no API key."""
    return [
        deploy({**base_config, "rds_proxy_enabled": "true", "tracing_enabled": "true"}),
        deploy({**base_config, "processor": "fargate", "processor_image": FARGATE_IMAGE,
                "tracing_enabled": "true", "rds_proxy_enabled": "true"}),
        deploy({**base_config, "api_key_required": "false"}),
    ]


def _documents(stack: Deployment) -> list[tuple[str, str, str]]:
    """(resource name, kind, JSON) of every IAM policy document in the stack."""
    docs = [(r.name, "trust", r.inputs["assumeRolePolicy"])
            for r in stack.of_type("aws:iam/role:Role")]
    docs += [(r.name, "permissions", r.inputs["policy"])
             for r in stack.of_type("aws:iam/rolePolicy:RolePolicy")]
    return docs


def _findings(document: str) -> list[tuple[str, str]]:
    return [(f.issue, f.detail if isinstance(f.detail, str) else repr(sorted(f.detail)))
            for f in parliament.analyze_policy_string(document).findings]


def test_rest_api_bodies_are_valid_swagger_2(variants: list[Deployment]) -> None:
    for stack in variants:
        (api,) = stack.of_type("aws:apigateway/restApi:RestApi")
        body: dict[str, Any] = json.loads(api.inputs["body"])
        assert body["swagger"] == "2.0"
        validate(body, cls=OpenAPIV2SpecValidator)


@pytest.mark.parametrize("api_key_required", [True, False])
def test_the_real_apps_rest_api_body_is_valid_swagger_2(api_key_required: bool) -> None:
    """chalice_app/app.py itself, not only the test app the fake artifact is built from."""
    swagger = CFNSwaggerGenerator().generate_swagger(real_app)
    body = json.loads(rest_api_body(swagger, INVOKE_ARN, api_key_required))
    assert "/openapi.json" in body["paths"]
    validate(body, cls=OpenAPIV2SpecValidator)


def test_an_invalid_body_is_caught() -> None:
    """The validator really rejects what API Gateway would: a path parameter left undeclared."""
    swagger = CFNSwaggerGenerator().generate_swagger(real_app)
    body = json.loads(rest_api_body(swagger, INVOKE_ARN, True))
    body["paths"]["/orders/{order_id}"]["get"]["parameters"] = []
    with pytest.raises(OpenAPIValidationError, match="order_id"):
        validate(body, cls=OpenAPIV2SpecValidator)


def test_every_iam_document_passes_parliament_or_is_tolerated_for_a_reason(
        variants: list[Deployment]) -> None:
    seen: set[tuple[str, str, str]] = set()
    for stack in variants:
        for name, kind, document in _documents(stack):
            for issue, detail in _findings(document):
                key = (kind, issue, detail)
                assert key in TOLERATED, f"{name}: {issue} {detail}"
                seen.add(key)
    assert seen == set(TOLERATED), "a tolerated finding no longer occurs; drop it"


def test_parliament_flags_a_misspelt_action() -> None:
    policy = json.dumps({"Version": "2012-10-17", "Statement": [{
        "Effect": "Allow", "Action": ["sqs:SendMesage"],
        "Resource": ["arn:aws:sqs:eu-west-1:123456789012:orderflow-test-orders"]}]})
    assert [issue for issue, _ in _findings(policy)] == ["UNKNOWN_ACTION"]
