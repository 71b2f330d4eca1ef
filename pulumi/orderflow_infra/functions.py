"""What every box that runs the app's code shares: its inputs, environment, IAM and the
Lambda function built from the chalice artifact (log group and role first)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import pulumi
import pulumi_aws as aws

from orderflow_infra import iam
from orderflow_infra.config import OrderflowConfig
from orderflow_infra.context import Context
from orderflow_infra.database import Database
from orderflow_infra.messaging import Messaging
from orderflow_infra.network import Network
from orderflow_infra.packaging import HANDLERS, ChaliceArtifact
from orderflow_infra.payments import Payments


@dataclass(frozen=True)
class AppArgs:
    """Inputs of the boxes that run the app: where it runs, what it talks to, its code.

    `migration` is what new code waits for (the schema it expects): every box but the
    migration itself gets it.
    """

    network: Network
    database: Database
    messaging: Messaging
    payments: Payments
    artifact: ChaliceArtifact
    migration: pulumi.Resource | None = None

    @property
    def after_migration(self) -> list[pulumi.Resource]:
        """`depends_on` of whatever serves new code."""
        return [self.migration] if self.migration is not None else []


def app_environment(ctx: Context, db: Database, msg: Messaging, payments: Payments
                    ) -> dict[str, pulumi.Input[str]]:
    """Variables the app reads (DSN is built in-app from the secret; no password here, nor
    a payment provider key: only the ARN of its secret)."""
    cfg = ctx.cfg
    env: dict[str, pulumi.Input[str]] = dict(cfg.app_env)
    env.update(payments.environment())
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
        "SERVICE_NAME": cfg.service_name,
        "METRICS_NAMESPACE": cfg.metrics_namespace,
        # RDS Proxy pins a client that PREPAREs to one database connection.
        "DB_PREPARED_STATEMENTS": "off" if cfg.rds_proxy_enabled else "on",
        # API Gateway checks the key; the app only declares it in its published document.
        "API_KEY_REQUIRED": "true" if cfg.api_key_required and cfg.auth == "api_key"
        else "false",
        # jwt: the API reads the authorizer's verdict (chalicelib/auth.py) and scopes orders.
        "AUTH": cfg.auth,
    })
    return env


def relay_statements(cfg: OrderflowConfig, db: Database, msg: Messaging,
                     payments: Payments) -> list[iam.Statement]:
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
        *payments.statements(),
    ]


def processor_statements(cfg: OrderflowConfig, db: Database, msg: Messaging,
                         payments: Payments) -> list[iam.Statement]:
    """A queue consumer (Lambda or Fargate) is a relay that also receives from its queue.

    It also sends poison messages straight to the DLQ itself (with the reason attached)
    instead of waiting for maxReceiveCount, so it may SendMessage there, and nothing else.
    """
    return [
        iam.allow(iam.SQS_CONSUME, [msg.queue.arn]),
        iam.allow(["sqs:SendMessage"], [msg.dlq.arn]),
        *relay_statements(cfg, db, msg, payments),
    ]


def _data_statements(cfg: OrderflowConfig, handler: str, args: AppArgs
                     ) -> list[iam.Statement]:
    """Per-handler grants; the migration function only reads the database secret."""
    db, msg = args.database, args.messaging
    if handler == HANDLERS.process_orders:
        return processor_statements(cfg, db, msg, args.payments)
    if handler == HANDLERS.migrate:
        return [iam.secret_statement(db.secret_arn)]
    return relay_statements(cfg, db, msg, args.payments)


def app_function(ctx: Context, key: str, handler: str, args: AppArgs, timeout: int,
                 extra_env: Mapping[str, pulumi.Input[str]] | None = None,
                 extra_statements: Sequence[iam.Statement] = (),
                 reserved_concurrency: int | None = None,
                 ) -> tuple[aws.lambda_.Function, aws.cloudwatch.LogGroup]:
    """One chalice handler as a VPC Lambda function, with its own log group and role.

    Declared under the calling component (`ctx.within`), so each box owns its functions.
    New code serves only once its schema is in place (`args.migration`). The old code keeps
    serving while the migration runs, which is why migrations must stay compatible with it
    (README). `extra_env` and `extra_statements` are what only this function needs (the API's
    webhook signing secret); `reserved_concurrency` caps its concurrent runs (the reconciler:
    one at a time).
    """
    cfg = ctx.cfg
    artifact, net = args.artifact, args.network
    env = {**app_environment(ctx, args.database, args.messaging, args.payments),
           **(extra_env or {})}
    statements = [*_data_statements(cfg, handler, args), *extra_statements]
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
        reserved_concurrent_executions=reserved_concurrency,
        tracing_config=aws.lambda_.FunctionTracingConfigArgs(
            mode="Active" if cfg.tracing_enabled else "PassThrough"
        ),
        opts=ctx.opts(depends_on=[log_group, role.policy, *args.after_migration]),
    )
    return function, log_group
