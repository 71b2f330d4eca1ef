"""The API box: API Gateway (REST, chalice's swagger as the body) in front of the `api`
Lambda function, with an API key and usage plan unless `api_key_required` is off."""

from __future__ import annotations

import hashlib
import json
from typing import Any

import pulumi
import pulumi_aws as aws

from orderflow_infra import iam
from orderflow_infra.context import Context
from orderflow_infra.functions import AppArgs, app_function
from orderflow_infra.identity import Identity
from orderflow_infra.packaging import HANDLERS, WEBHOOK_PATH, AuthorizerTarget, render_swagger

# Gateway responses: (type, status or None to keep API Gateway's, code, message). API
# Gateway's own errors (unknown route, missing key, throttling) then share the app's
# `{"error": {...}}` shape and, where the README's error table names one, its status.
# A REST API without a method for the request's verb answers MISSING_AUTHENTICATION_TOKEN,
# so in the cloud a wrong method gets the unknown-route 404.
GATEWAY_RESPONSES = (
    ("MISSING_AUTHENTICATION_TOKEN", "404", "NOT_FOUND", "No such route"),
    ("RESOURCE_NOT_FOUND", "404", "NOT_FOUND", "No such route"),
    ("INVALID_API_KEY", "401", "UNAUTHORIZED", "Missing or invalid x-api-key header"),
    ("UNAUTHORIZED", "401", "UNAUTHORIZED", "Missing, invalid or expired bearer token"),
    ("ACCESS_DENIED", "403", "FORBIDDEN", "Access denied"),
    ("THROTTLED", "429", "THROTTLED", "Too many requests"),
    ("QUOTA_EXCEEDED", "429", "QUOTA_EXCEEDED", "Usage quota exceeded"),
    ("REQUEST_TOO_LARGE", "413", "PAYLOAD_TOO_LARGE", "Request body too large"),
    ("UNSUPPORTED_MEDIA_TYPE", "415", "UNSUPPORTED_MEDIA_TYPE",
     "Content-Type must be application/json"),
    ("INTEGRATION_TIMEOUT", "504", "GATEWAY_TIMEOUT", "The request took too long"),
    ("DEFAULT_4XX", None, "BAD_REQUEST", "The request was rejected"),
    ("DEFAULT_5XX", None, "INTERNAL_ERROR", "Internal error"),
)


def gateway_responses() -> dict[str, dict[str, Any]]:
    """`x-amazon-apigateway-gateway-responses` for the REST API body.

    In the body, not as `aws.apigateway.Response` resources: a body update overwrites the
    API's whole configuration, which would drop separately declared responses.
    """
    responses: dict[str, dict[str, Any]] = {}
    for rtype, status, code, message in GATEWAY_RESPONSES:
        response: dict[str, Any] = {"responseTemplates": {"application/json": json.dumps(
            {"error": {"code": code, "message": message}})}}
        if status is not None:
            response["statusCode"] = status
        if rtype == "UNAUTHORIZED":  # the JWT authorizer refused the token (RFC 6750)
            response["responseParameters"] = {
                "gatewayresponse.header.WWW-Authenticate": "'Bearer realm=\"orderflow\"'"}
        responses[rtype] = response
    return responses


def rest_api_body(swagger: dict[str, Any], invoke_arn: str, api_key_required: bool,
                  authorizer: AuthorizerTarget | None = None) -> str:
    """The REST API definition: chalice's swagger, the integration and the gateway responses."""
    body = render_swagger(swagger, invoke_arn, api_key_required, authorizer)
    body["x-amazon-apigateway-gateway-responses"] = gateway_responses()
    return json.dumps(body, sort_keys=True)


class Api(pulumi.ComponentResource):
    """`client -> API Gateway (REST) -> Lambda: API` of the diagram.

    `url` is the orders endpoint of the stage; `api_key` is None without `api_key_required`.
    `webhook_url` is the endpoint to register in Stripe; with `stripe_webhook_secret` set, the
    secret lives in Secrets Manager (`webhook_secret`) and only the API function may read it.
    """

    functions: dict[str, aws.lambda_.Function]
    log_groups: dict[str, aws.cloudwatch.LogGroup]
    rest_api: aws.apigateway.RestApi
    stage: aws.apigateway.Stage
    url: pulumi.Output[str]
    api_key: aws.apigateway.ApiKey | None
    webhook_url: pulumi.Output[str]
    webhook_secret: aws.secretsmanager.Secret | None

    def __init__(self, name: str, ctx: Context, args: AppArgs,
                 identity: Identity | None = None,
                 opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("orderflow:api:Api", name, {}, opts)
        ctx = ctx.within(self)
        self.webhook_secret = self._webhook_secret(ctx)
        env: dict[str, pulumi.Input[str]] = {}
        grants: list[iam.Statement] = []
        if self.webhook_secret is not None:
            env["STRIPE_WEBHOOK_SECRET_ARN"] = self.webhook_secret.arn
            grants.append(iam.secret_statement(self.webhook_secret.arn))
        function, log_group = app_function(ctx, "api", HANDLERS.api, args,
                                           ctx.cfg.lambda_timeout_seconds, env, grants)
        self.functions, self.log_groups = {"api": function}, {"api": log_group}
        self._gateway(ctx, function, args, identity)
        self.url = pulumi.Output.concat(self.stage.invoke_url, "/orders")
        self.webhook_url = pulumi.Output.concat(self.stage.invoke_url, WEBHOOK_PATH)
        outputs: dict[str, pulumi.Input[str]] = {"url": self.url,
                                                 "rest_api_id": self.rest_api.id,
                                                 "webhook_url": self.webhook_url}
        if self.api_key is not None:
            outputs["api_key_id"] = self.api_key.id
        self.register_outputs(outputs)

    def _webhook_secret(self, ctx: Context) -> aws.secretsmanager.Secret | None:
        """The signing secret in Secrets Manager (auto-named: a deleted secret's name stays
        reserved for its recovery window, so a fixed name would block a re-create)."""
        value = ctx.cfg.stripe_webhook_secret
        if value is None:
            return None
        secret = aws.secretsmanager.Secret(
            "stripe-webhook-secret",
            description="Stripe webhook signing secret (orderflow config stripe_webhook_secret)",
            opts=ctx.opts(),
        )
        aws.secretsmanager.SecretVersion("stripe-webhook-secret-value", secret_id=secret.id,
                                         secret_string=value, opts=ctx.opts())
        return secret

    def _gateway(self, ctx: Context, function: aws.lambda_.Function, args: AppArgs,
                 identity: Identity | None) -> None:
        cfg = ctx.cfg
        swagger = args.artifact.swagger
        if identity is None:
            body = function.invoke_arn.apply(
                lambda arn: rest_api_body(swagger, arn, cfg.api_key_required))
        else:
            body = pulumi.Output.all(function.invoke_arn, identity.authorizer.invoke_arn).apply(
                lambda arns: rest_api_body(
                    swagger, arns[0], cfg.api_key_required,
                    AuthorizerTarget(arns[1], cfg.jwt_authorizer_ttl_seconds)))
        self.rest_api = aws.apigateway.RestApi(
            "api", name=ctx.name("api"), body=body,
            endpoint_configuration=aws.apigateway.RestApiEndpointConfigurationArgs(
                types="REGIONAL"),
            opts=ctx.opts(),
        )
        aws.lambda_.Permission(
            "api-invoke", action="lambda:InvokeFunction", function=function.name,
            principal="apigateway.amazonaws.com",
            source_arn=pulumi.Output.concat(self.rest_api.execution_arn, "/*"),
            opts=ctx.opts(),
        )
        if identity is not None:
            aws.lambda_.Permission(
                "jwt-auth-invoke", action="lambda:InvokeFunction",
                function=identity.authorizer.name, principal="apigateway.amazonaws.com",
                source_arn=pulumi.Output.concat(self.rest_api.execution_arn, "/authorizers/*"),
                opts=ctx.opts(),
            )
        # A new deployment whenever the API definition (gateway responses included) changes.
        deployment = aws.apigateway.Deployment(
            "api-deployment", rest_api=self.rest_api.id,
            triggers={"body": body.apply(lambda b: hashlib.sha256(b.encode()).hexdigest())},
            opts=ctx.opts(),
        )
        self.stage = aws.apigateway.Stage(
            "api-stage", rest_api=self.rest_api.id, deployment=deployment.id,
            stage_name=cfg.environment, xray_tracing_enabled=cfg.tracing_enabled,
            opts=ctx.opts(),
        )
        # With `auth: jwt` the order routes take bearer tokens, not API Gateway's key.
        self.api_key = (self._key(ctx) if cfg.api_key_required and identity is None
                        else None)

    def _key(self, ctx: Context) -> aws.apigateway.ApiKey:
        """The key API Gateway checks, attached to the stage through a usage plan whose
        throttle and daily quota are what the error table's 429 THROTTLED / QUOTA_EXCEEDED
        answer to (without them only the account-wide throttle applies, and no quota)."""
        cfg = ctx.cfg
        api_key = aws.apigateway.ApiKey("api-key", name=ctx.name("api-key"), opts=ctx.opts())
        quota = (aws.apigateway.UsagePlanQuotaSettingsArgs(limit=cfg.api_quota_per_day,
                                                           period="DAY")
                 if cfg.api_quota_per_day else None)
        plan = aws.apigateway.UsagePlan(
            "api-usage-plan", name=ctx.name("usage-plan"),
            api_stages=[aws.apigateway.UsagePlanApiStageArgs(api_id=self.rest_api.id,
                                                             stage=self.stage.stage_name)],
            throttle_settings=aws.apigateway.UsagePlanThrottleSettingsArgs(
                rate_limit=cfg.api_rate_limit, burst_limit=cfg.api_burst_limit),
            quota_settings=quota,
            opts=ctx.opts(),
        )
        aws.apigateway.UsagePlanKey("api-usage-plan-key", key_id=api_key.id,
                                    key_type="API_KEY", usage_plan_id=plan.id, opts=ctx.opts())
        return api_key
