"""Private, encrypted RDS PostgreSQL whose master password lives only in Secrets Manager."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import pulumi
import pulumi_aws as aws

from orderflow_infra import iam
from orderflow_infra.context import Context
from orderflow_infra.network import POSTGRES_PORT, Network, allow_postgres

MASTER_USERNAME = "orderflow_admin"


@dataclass(frozen=True)
class Database:
    """Connection facts the app needs; `host` is the proxy endpoint when the proxy is on."""

    instance: aws.rds.Instance
    host: pulumi.Output[str]
    port: int
    secret_arn: pulumi.Output[str]
    # Resources that must exist before the first connection (migrations wait on them).
    ready: list[pulumi.Resource]


def _master_secret_arn(secrets: Sequence[aws.rds.outputs.InstanceMasterUserSecret] | None
                       ) -> str:
    """The RDS-managed secret; its absence would leave the app with no credentials."""
    arn = secrets[0].secret_arn if secrets else None
    if not arn:
        raise pulumi.RunError("RDS reported no master user secret for the database")
    return arn


def create_database(ctx: Context, net: Network) -> Database:
    """DB instance, and optionally an RDS Proxy in front of it."""
    cfg = ctx.cfg
    subnet_group = aws.rds.SubnetGroup("db-subnets", name=ctx.name("db"),
                                       subnet_ids=net.subnet_ids, opts=ctx.opts())
    # Auto-named: a new family or description replaces the group, and the replacement must
    # exist (under another name) before the instance switches to it and the old one goes.
    params = aws.rds.ParameterGroup(
        "db-params",
        family=f"postgres{cfg.db_engine_major}",
        parameters=[aws.rds.ParameterGroupParameterArgs(name="rds.force_ssl", value="1")],
        opts=ctx.opts(),
    )
    instance = aws.rds.Instance(
        "db",
        identifier=ctx.name("db"),
        engine="postgres",
        engine_version=cfg.db_engine_version,
        instance_class=cfg.db_instance_class,
        allocated_storage=cfg.db_allocated_storage_gb,
        storage_type="gp3",
        storage_encrypted=True,
        db_name=cfg.db_name,
        username=MASTER_USERNAME,
        manage_master_user_password=True,
        port=POSTGRES_PORT,
        db_subnet_group_name=subnet_group.name,
        parameter_group_name=params.name,
        vpc_security_group_ids=[net.db_sg.id],
        publicly_accessible=False,
        multi_az=cfg.db_multi_az,
        backup_retention_period=cfg.db_backup_retention_days,
        deletion_protection=cfg.db_deletion_protection,
        copy_tags_to_snapshot=True,
        skip_final_snapshot=False,
        final_snapshot_identifier=ctx.name("db-final"),
        auto_minor_version_upgrade=True,
        # The identifier stays fixed (snapshots and operators refer to it), so a replacement
        # (a changed username or storage_encrypted forces one) deletes first: refused while
        # deletion protection is on, otherwise after the final snapshot. Creating the
        # replacement first would collide on the identifier.
        opts=ctx.opts(delete_before_replace=True),
    )
    secret_arn = instance.master_user_secrets.apply(_master_secret_arn)
    if not cfg.rds_proxy_enabled:
        allow_postgres(ctx, "app-to-db", net.app_sg, net.db_sg)
        return Database(instance=instance, host=instance.address, port=POSTGRES_PORT,
                        secret_arn=secret_arn, ready=[instance])

    # Auto-named, like the other groups (network.py): the replacement may coexist.
    proxy_sg = aws.ec2.SecurityGroup(
        "proxy-sg", vpc_id=net.vpc.id, description="RDS Proxy, reachable from the app only",
        tags={"Name": ctx.name("proxy-sg")}, opts=ctx.opts(),
    )
    allow_postgres(ctx, "app-to-proxy", net.app_sg, proxy_sg)
    allow_postgres(ctx, "proxy-to-db", proxy_sg, net.db_sg)
    proxy_role = iam.service_role(ctx, "proxy-role", "rds.amazonaws.com",
                            [iam.secret_statement(secret_arn)])
    # Auto-named: new subnets replace a proxy, and the app keeps using the old one until the
    # new endpoint is in its environment; a fixed name would collide.
    proxy = aws.rds.Proxy(
        "db-proxy",
        engine_family="POSTGRESQL",
        role_arn=proxy_role.role.arn,
        vpc_subnet_ids=net.subnet_ids,
        vpc_security_group_ids=[proxy_sg.id],
        require_tls=True,
        auths=[aws.rds.ProxyAuthArgs(auth_scheme="SECRETS", secret_arn=secret_arn,
                                     iam_auth="DISABLED",
                                     client_password_auth_type="POSTGRES_SCRAM_SHA_256")],  # noqa: S106 (a mode name)
        opts=ctx.opts(depends_on=[proxy_role.policy]),
    )
    target_group = aws.rds.ProxyDefaultTargetGroup(
        "db-proxy-target-group", db_proxy_name=proxy.name,
        connection_pool_config=aws.rds.ProxyDefaultTargetGroupConnectionPoolConfigArgs(
            max_connections_percent=90,
        ),
        opts=ctx.opts(),
    )
    target = aws.rds.ProxyTarget(
        "db-proxy-target", db_proxy_name=proxy.name, target_group_name=target_group.name,
        db_instance_identifier=instance.identifier, opts=ctx.opts(),
    )
    return Database(instance=instance, host=proxy.endpoint, port=POSTGRES_PORT,
                    secret_arn=secret_arn, ready=[instance, target])
