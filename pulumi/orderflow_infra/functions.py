"""Lambda functions from the chalice artifact, the SQS/schedule wiring and the REST API."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import pulumi
import pulumi_aws as aws

from orderflow_infra import iam
from orderflow_infra.config import OrderflowConfig
from orderflow_infra.context import Context
from orderflow_infra.database import Database
from orderflow_infra.messaging import Messaging
from orderflow_infra.network import Network
from orderflow_infra.packaging import HANDLERS, ChaliceArtifact, render_swagger

MIGRATE_TIMEOUT_SECONDS = 300  # migrations may outlast a request; the DB is the limit
# Gateway responses: (type, status or None to keep API Gateway's, code, message). API
# Gateway's own errors (unknown route, missing key, throttling) then share the app's
# `{"error": {...}}` shape and, where the README's error table names one, its status.
# A REST API without a method for the request's verb answers MISSING_AUTHENTICATION_TOKEN,
# so in the cloud a wrong method gets the unknown-route 404.
GATEWAY_RESPONSES = (
    ("MISSING_AUTHENTICATION_TOKEN", "404", "NOT_FOUND", "No such route"),
    ("RESOURCE_NOT_FOUND", "404", "NOT_FOUND", "No such route"),
    ("INVALID_API_KEY", "401", "UNAUTHORIZED", "Missing or invalid x-api-key header"),
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
        responses[rtype] = response
    return responses


def rest_api_body(swagger: dict[str, Any], invoke_arn: str, api_key_required: bool) -> str:
    """The REST API definition: chalice's swagger, the integration and the gateway responses."""
    body = render_swagger(swagger, invoke_arn, api_key_required)
    body["x-amazon-apigateway-gateway-responses"] = gateway_responses()
    return json.dumps(body, sort_keys=True)


@dataclass(frozen=True)
class Functions:
    """Deployed functions and log groups keyed like `api`, `process-orders`; the API."""

    functions: dict[str, aws.lambda_.Function]
    log_groups: dict[str, aws.cloudwatch.LogGroup]
    migration: aws.lambda_.Invocation
    rest_api: aws.apigateway.RestApi
    stage: aws.apigateway.Stage
    api_url: pulumi.Output[str]
    api_key: aws.apigateway.ApiKey | None


def app_environment(ctx: Context, db: Database, msg: Messaging) -> dict[str, pulumi.Input[str]]:
    """Variables the app reads (DSN is built in-app from the secret; no password here)."""
    cfg = ctx.cfg
    env: dict[str, pulumi.Input[str]] = dict(cfg.app_env)
    env.update({
        "ORDER_QUEUE_URL": msg.queue.url,
        "ORDER_DLQ_URL": msg.dlq.url,
        "NOTIFICATION_TOPIC_ARN": msg.notification_topic.arn,
        "SENDER_EMAIL": cfg.sender_email,
        "DB_SECRET_ARN": db.secret_arn,
        "DB_HOST": db.host,
        "DB_PORT": str(db.port),
        "DB_NAME": cfg.db_name,
        "APP_ENV": cfg.environment,
        "LOG_LEVEL": cfg.log_level,
        "POWERTOOLS_SERVICE_NAME": cfg.service_name,
        "METRICS_NAMESPACE": cfg.metrics_namespace,
        # RDS Proxy pins a client that PREPAREs to one database connection.
        "DB_PREPARED_STATEMENTS": "off" if cfg.rds_proxy_enabled else "on",
        # API Gateway checks the key; the app only declares it in its published document.
        "API_KEY_REQUIRED": "true" if cfg.api_key_required else "false",
    })
    return env


def relay_statements(cfg: OrderflowConfig, db: Database, msg: Messaging
                     ) -> list[iam.Statement]:
    """What an outbox relay may do: send to its queue, publish to its topic, email, read DB.

    The API relays right after commit (create: order queue; cancel: SNS + SES) and the
    sweeper re-relays whatever is left, so both need all of these. The notification topic
    uses the AWS-managed `aws/sns` key, which needs no KMS grant.
    """
    return [
        iam.allow(iam.SQS_SEND, [msg.queue.arn]),
        iam.allow(["sns:Publish"], [msg.notification_topic.arn]),
        iam.ses_send_statement(msg.sender_identity.arn, cfg.sender_email),
        iam.secret_statement(db.secret_arn),
    ]


def processor_statements(cfg: OrderflowConfig, db: Database, msg: Messaging
                         ) -> list[iam.Statement]:
    """A queue consumer (Lambda or Fargate) is a relay that also receives from its queue.

    It also sends poison messages straight to the DLQ itself (with the reason attached)
    instead of waiting for maxReceiveCount, so it may SendMessage there, and nothing else.
    """
    return [
        iam.allow(iam.SQS_CONSUME, [msg.queue.arn]),
        iam.allow(["sqs:SendMessage"], [msg.dlq.arn]),
        *relay_statements(cfg, db, msg),
    ]


def _data_statements(cfg: OrderflowConfig, handler: str, db: Database, msg: Messaging
                     ) -> list[iam.Statement]:
    """Per-handler grants; the migration function only reads the database secret."""
    if handler == HANDLERS.process_orders:
        return processor_statements(cfg, db, msg)
    if handler == HANDLERS.migrate:
        return [iam.secret_statement(db.secret_arn)]
    return relay_statements(cfg, db, msg)


def _function(ctx: Context, key: str, handler: str, artifact: ChaliceArtifact, net: Network,
              env: dict[str, pulumi.Input[str]], statements: Sequence[iam.Statement],
              timeout: int, after: Sequence[pulumi.Resource] = (),
              ) -> tuple[aws.lambda_.Function, aws.cloudwatch.LogGroup]:
    cfg = ctx.cfg
    name = ctx.name(key)
    # Created first so Lambda does not create it with infinite retention.
    log_group = aws.cloudwatch.LogGroup(
        f"{key}-logs", name=f"/aws/lambda/{name}", retention_in_days=cfg.log_retention_days,
        opts=ctx.opts(),
    )
    grants = [iam.log_statement(log_group), iam.VPC_ENI_STATEMENT, *statements]
    if cfg.tracing_enabled:
        grants.append(iam.XRAY_STATEMENT)
    role = iam.service_role(ctx, f"{key}-role", "lambda.amazonaws.com", grants)
    props = artifact.function(handler)
    function = aws.lambda_.Function(
        key,
        name=name,
        role=role.role.arn,
        runtime=artifact.runtime(handler),
        handler=handler,
        architectures=props.get("Architectures", ["x86_64"]),
        code=pulumi.FileArchive(str(artifact.zip_path)),
        memory_size=cfg.lambda_memory_mb,
        timeout=timeout,
        environment=aws.lambda_.FunctionEnvironmentArgs(variables=env),
        vpc_config=aws.lambda_.FunctionVpcConfigArgs(
            subnet_ids=net.subnet_ids, security_group_ids=[net.app_sg.id]
        ),
        tracing_config=aws.lambda_.FunctionTracingConfigArgs(
            mode="Active" if cfg.tracing_enabled else "PassThrough"
        ),
        opts=ctx.opts(depends_on=[log_group, role.policy, *after]),
    )
    return function, log_group


def _rest_api(ctx: Context, api_fn: aws.lambda_.Function, artifact: ChaliceArtifact
              ) -> tuple[aws.apigateway.RestApi, aws.apigateway.Stage,
                         aws.apigateway.ApiKey | None]:
    cfg = ctx.cfg
    swagger = artifact.swagger
    body = api_fn.invoke_arn.apply(
        lambda arn: rest_api_body(swagger, arn, cfg.api_key_required))
    rest_api = aws.apigateway.RestApi(
        "api", name=ctx.name("api"), body=body,
        endpoint_configuration=aws.apigateway.RestApiEndpointConfigurationArgs(types="REGIONAL"),
        opts=ctx.opts(),
    )
    aws.lambda_.Permission(
        "api-invoke", action="lambda:InvokeFunction", function=api_fn.name,
        principal="apigateway.amazonaws.com",
        source_arn=pulumi.Output.concat(rest_api.execution_arn, "/*"), opts=ctx.opts(),
    )
    # A new deployment whenever the API definition (gateway responses included) changes.
    deployment = aws.apigateway.Deployment(
        "api-deployment", rest_api=rest_api.id,
        triggers={"body": body.apply(lambda b: hashlib.sha256(b.encode()).hexdigest())},
        opts=ctx.opts(),
    )
    stage = aws.apigateway.Stage(
        "api-stage", rest_api=rest_api.id, deployment=deployment.id,
        stage_name=cfg.environment, xray_tracing_enabled=cfg.tracing_enabled, opts=ctx.opts(),
    )
    if not cfg.api_key_required:
        return rest_api, stage, None
    api_key = aws.apigateway.ApiKey("api-key", name=ctx.name("api-key"), opts=ctx.opts())
    plan = aws.apigateway.UsagePlan(
        "api-usage-plan", name=ctx.name("usage-plan"),
        api_stages=[aws.apigateway.UsagePlanApiStageArgs(api_id=rest_api.id,
                                                         stage=stage.stage_name)],
        opts=ctx.opts(),
    )
    aws.apigateway.UsagePlanKey("api-usage-plan-key", key_id=api_key.id, key_type="API_KEY",
                                usage_plan_id=plan.id, opts=ctx.opts())
    return rest_api, stage, api_key


def create_functions(ctx: Context, net: Network, db: Database, msg: Messaging,
                     artifact: ChaliceArtifact) -> Functions:
    """All Lambda functions; the SQS consumer exists only in `processor: lambda` mode."""
    cfg = ctx.cfg
    env = app_environment(ctx, db, msg)
    functions: dict[str, aws.lambda_.Function] = {}
    log_groups: dict[str, aws.cloudwatch.LogGroup] = {}
    functions["migrate"], log_groups["migrate"] = _function(
        ctx, "migrate", HANDLERS.migrate, artifact, net, env,
        _data_statements(cfg, HANDLERS.migrate, db, msg), MIGRATE_TIMEOUT_SECONDS,
    )

    # Apply migrations once per artifact, after the DB and the endpoints it needs exist.
    migration = aws.lambda_.Invocation(
        "migrate-run",
        function_name=functions["migrate"].name,
        input=json.dumps({"source": "pulumi", "artifact_sha256": artifact.sha256}),
        triggers={"artifact_sha256": artifact.sha256},
        opts=ctx.opts(depends_on=[*db.ready, *net.endpoints]),
    )

    # New code serves only once its schema is in place. The old code keeps serving while the
    # migration runs, which is why migrations must stay compatible with it (README).
    specs = [("api", HANDLERS.api), ("sweep-outbox", HANDLERS.sweep_outbox)]
    if cfg.processor == "lambda":
        specs.append(("process-orders", HANDLERS.process_orders))
    for key, handler in specs:
        functions[key], log_groups[key] = _function(
            ctx, key, handler, artifact, net, env, _data_statements(cfg, handler, db, msg),
            cfg.lambda_timeout_seconds, after=[migration],
        )

    if cfg.processor == "lambda":
        aws.lambda_.EventSourceMapping(
            "process-orders-sqs",
            event_source_arn=msg.queue.arn,
            function_name=functions["process-orders"].arn,
            batch_size=cfg.sqs_batch_size,
            function_response_types=["ReportBatchItemFailures"],
            scaling_config=aws.lambda_.EventSourceMappingScalingConfigArgs(
                maximum_concurrency=cfg.sqs_max_concurrency
            ),
            opts=ctx.opts(depends_on=[migration]),
        )

    sweeper = functions["sweep-outbox"]
    rule = aws.cloudwatch.EventRule(
        "sweep-outbox-schedule", name=ctx.name("sweep-outbox"),
        schedule_expression=artifact.schedule(HANDLERS.sweep_outbox), opts=ctx.opts(),
    )
    aws.cloudwatch.EventTarget("sweep-outbox-target", rule=rule.name, arn=sweeper.arn,
                               opts=ctx.opts(depends_on=[migration]))
    aws.lambda_.Permission(
        "sweep-outbox-invoke", action="lambda:InvokeFunction", function=sweeper.name,
        principal="events.amazonaws.com", source_arn=rule.arn, opts=ctx.opts(),
    )

    rest_api, stage, api_key = _rest_api(ctx, functions["api"], artifact)
    return Functions(
        functions=functions, log_groups=log_groups, migration=migration, rest_api=rest_api,
        stage=stage, api_url=pulumi.Output.concat(stage.invoke_url, "/orders"),
        api_key=api_key,
    )
