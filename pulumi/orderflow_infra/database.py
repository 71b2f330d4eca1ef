"""Private, encrypted PostgreSQL whose master password lives only in Secrets Manager.

One RDS instance by default; `db_engine: aurora-serverless` is the path past one instance's
size: an Aurora Serverless v2 cluster that scales between `db_min/max_capacity_acu`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import pulumi
import pulumi_aws as aws

from orderflow_infra import iam
from orderflow_infra.context import Context
from orderflow_infra.deployed import DeployedSettings, check_transition, is_major_upgrade
from orderflow_infra.network import HTTPS_PORT, POSTGRES_PORT, Network, allow_postgres, allow_tcp

MASTER_USERNAME = "orderflow_admin"
AURORA_ENGINE = aws.rds.EngineType.AURORA_POSTGRESQL
# Ignored after creation (below), so a final snapshot name is fixed when its database is
# created: every incarnation of the database (a replacement, an engine switch and back)
# leaves its own snapshot instead of colliding with the one the previous incarnation left.
SNAPSHOT_STAMP_FORMAT = "%Y%m%d%H%M%S"
# What a replacement of the server must not look at again: created once per database.
CREATE_ONLY = ["finalSnapshotIdentifier"]


@dataclass(frozen=True)
class _Server:
    """What either engine hands to the proxy and to Database."""

    instance: aws.rds.Instance | aws.rds.ClusterInstance
    cluster: aws.rds.Cluster | None
    address: pulumi.Output[str]
    secret_arn: pulumi.Output[str]
    # Changes whenever the database is a new one (a replacement keeps the fixed identifier
    # and endpoint, not the resource id).
    identity: pulumi.Output[str]
    ready: list[pulumi.Resource]


def _master_secret_arn(secrets: Sequence[aws.rds.outputs.InstanceMasterUserSecret |
                                         aws.rds.outputs.ClusterMasterUserSecret] | None
                       ) -> str:
    """The RDS-managed secret; its absence would leave the app with no credentials."""
    arn = secrets[0].secret_arn if secrets else None
    if not arn:
        raise pulumi.RunError("RDS reported no master user secret for the database")
    return arn


def snapshot_stamp() -> str:
    """When this database is declared, to name its final snapshot (UTC, to the second)."""
    return datetime.now(UTC).strftime(SNAPSHOT_STAMP_FORMAT)


def _checked_version(cfg_version: str, previous: pulumi.Output[DeployedSettings],
                     ctx: Context) -> pulumi.Output[str]:
    """The engine version, once the deployed version and storage allow the change.

    The check runs inside the input, so a refused change fails the run at the database
    before it is sent to AWS.
    """
    def check(deployed: DeployedSettings) -> str:
        check_transition(deployed, ctx.cfg)
        return cfg_version
    return previous.apply(check)


def _guarded_server_args(ctx: Context, net: Network, subnet_group: aws.rds.SubnetGroup,
                         previous: pulumi.Output[DeployedSettings], kind: str
                         ) -> dict[str, Any]:
    """The arguments the RDS instance and the Aurora cluster share, written once so that both
    engines keep the same guarantees: a managed master secret, encryption, the private
    network, backups, deletion protection and a final snapshot of their own (`kind` names it).

    A major version upgrade must be allowed explicitly and applies at once (with its new
    parameter group); other changes apply at once only with `db_apply_immediately`.
    """
    cfg = ctx.cfg
    return {
        "engine_version": _checked_version(cfg.db_engine_version, previous, ctx),
        "allow_major_version_upgrade": True,
        "apply_immediately": previous.apply(
            lambda deployed: cfg.db_apply_immediately or is_major_upgrade(deployed, cfg)),
        "manage_master_user_password": True,
        "port": POSTGRES_PORT,
        "db_subnet_group_name": subnet_group.name,
        "vpc_security_group_ids": [net.db_sg.id],
        "storage_encrypted": True,
        "backup_retention_period": cfg.db_backup_retention_days,
        "deletion_protection": cfg.db_deletion_protection,
        "copy_tags_to_snapshot": True,
        "skip_final_snapshot": False,
        "final_snapshot_identifier": ctx.name(f"{kind}-final-{snapshot_stamp()}"),
    }


def _rds_instance(ctx: Context, net: Network, subnet_group: aws.rds.SubnetGroup,
                  previous: pulumi.Output[DeployedSettings]) -> _Server:
    """One RDS PostgreSQL instance (optionally Multi-AZ): the default engine."""
    cfg = ctx.cfg
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
        instance_class=cfg.db_instance_class,
        allocated_storage=cfg.db_allocated_storage_gb,
        storage_type="gp3",
        db_name=cfg.db_name,
        username=MASTER_USERNAME,
        parameter_group_name=params.name,
        publicly_accessible=False,
        multi_az=cfg.db_multi_az,
        auto_minor_version_upgrade=True,
        **_guarded_server_args(ctx, net, subnet_group, previous, "db"),
        # The identifier stays fixed (snapshots and operators refer to it), so a replacement
        # (a changed username or storage_encrypted forces one) deletes first: refused while
        # deletion protection is on, otherwise after the final snapshot. Creating the
        # replacement first would collide on the identifier.
        opts=ctx.opts(delete_before_replace=True, ignore_changes=CREATE_ONLY),
    )
    return _Server(instance=instance, cluster=None, address=instance.address,
                   secret_arn=instance.master_user_secrets.apply(_master_secret_arn),
                   identity=instance.resource_id.apply(lambda rid: rid or ""),
                   ready=[instance])


def _aurora_serverless(ctx: Context, net: Network, subnet_group: aws.rds.SubnetGroup,
                       previous: pulumi.Output[DeployedSettings]) -> _Server:
    """Aurora PostgreSQL Serverless v2: a cluster plus `db.serverless` instances.

    Same guarantees as the instance: managed master secret, encryption, backups, final
    snapshot, deletion protection, TLS only. With `db_multi_az` a second (reader) instance
    in another zone is the failover target, as the standby is for RDS.
    """
    cfg = ctx.cfg
    # Auto-named for the same reason as the instance's parameter group.
    params = aws.rds.ClusterParameterGroup(
        "db-cluster-params",
        family=f"aurora-postgresql{cfg.db_engine_major}",
        parameters=[aws.rds.ClusterParameterGroupParameterArgs(name="rds.force_ssl",
                                                               value="1")],
        opts=ctx.opts(),
    )
    cluster = aws.rds.Cluster(
        "db-cluster",
        cluster_identifier=ctx.name("db"),
        engine=AURORA_ENGINE,
        engine_mode="provisioned",  # Serverless v2 runs in provisioned mode
        database_name=cfg.db_name,
        master_username=MASTER_USERNAME,
        db_cluster_parameter_group_name=params.name,
        serverlessv2_scaling_configuration=aws.rds.ClusterServerlessv2ScalingConfigurationArgs(
            min_capacity=cfg.db_min_capacity_acu, max_capacity=cfg.db_max_capacity_acu),
        **_guarded_server_args(ctx, net, subnet_group, previous, "cluster"),
        # A fixed identifier, as for the RDS instance: a replacement deletes first, which
        # deletion protection refuses.
        opts=ctx.opts(delete_before_replace=True, ignore_changes=CREATE_ONLY),
    )
    instances = [
        aws.rds.ClusterInstance(
            # Auto-named: a replaced instance joins the cluster before the old one leaves.
            f"db-instance-{index}",
            cluster_identifier=cluster.id,
            instance_class="db.serverless",
            engine=AURORA_ENGINE,
            engine_version=cluster.engine_version,
            db_subnet_group_name=subnet_group.name,
            publicly_accessible=False,
            auto_minor_version_upgrade=True,
            opts=ctx.opts(),
        )
        for index in range(2 if cfg.db_multi_az else 1)
    ]
    # The cluster endpoint exists before any instance does (about ten minutes without one
    # that serves): whoever is given the address waits for the instances too.
    address = pulumi.Output.all(cluster.endpoint, *[i.id for i in instances]).apply(
        lambda values: str(values[0]))
    return _Server(instance=instances[0], cluster=cluster, address=address,
                   secret_arn=cluster.master_user_secrets.apply(_master_secret_arn),
                   identity=cluster.cluster_resource_id.apply(lambda rid: rid or ""),
                   ready=[cluster, *instances])


@dataclass(frozen=True)
class DatabaseArgs:
    """What the database needs from other boxes: the network it lives in."""

    network: Network
    # The last deployment's settings (deployed.py): what a change may not undo.
    previous: pulumi.Output[DeployedSettings]


class Database(pulumi.ComponentResource):
    """The diagram's PostgreSQL box: an RDS instance or an Aurora Serverless v2 cluster,
    optionally behind an RDS Proxy.

    Connection facts the app needs; `host` is the proxy endpoint when the proxy is on, and
    `ready` lists what must exist before the first connection (migrations wait on it).
    """

    # The RDS instance, or with `db_engine: aurora-serverless` the cluster's writer instance.
    instance: aws.rds.Instance | aws.rds.ClusterInstance
    cluster: aws.rds.Cluster | None
    host: pulumi.Output[str]
    port: int
    secret_arn: pulumi.Output[str]
    identity: pulumi.Output[str]
    ready: list[pulumi.Resource]

    def __init__(self, name: str, ctx: Context, args: DatabaseArgs,
                 opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("orderflow:database:Database", name, {}, opts)
        ctx = ctx.within(self)
        net = args.network
        subnet_group = aws.rds.SubnetGroup("db-subnets", name=ctx.name("db"),
                                           subnet_ids=net.subnet_ids, opts=ctx.opts())
        if ctx.cfg.db_engine == "aurora-serverless":
            server = _aurora_serverless(ctx, net, subnet_group, args.previous)
        else:
            server = _rds_instance(ctx, net, subnet_group, args.previous)
        self.instance, self.cluster = server.instance, server.cluster
        self.port = POSTGRES_PORT
        self.secret_arn, self.identity = server.secret_arn, server.identity
        if ctx.cfg.rds_proxy_enabled:
            proxy, target, rules = _proxy(ctx, net, server)
            # The proxy answers before its target has registered: the host waits for it.
            self.host = pulumi.Output.all(proxy.endpoint, target.id).apply(
                lambda values: str(values[0]))
            self.ready = [*server.ready, target, *rules]
        else:
            rules = allow_postgres(ctx, "app-to-db", net.app_sg, net.db_sg)
            self.host, self.ready = server.address, [*server.ready, *rules]
        self.register_outputs({"host": self.host, "port": self.port,
                               "secret_arn": self.secret_arn})

    @property
    def metric_dimensions(self) -> dict[str, pulumi.Output[str]]:
        """CloudWatch dimensions of the database's AWS/RDS metrics.

        Aurora publishes CPU, connections and capacity per cluster (DBClusterIdentifier);
        an RDS instance per instance (DBInstanceIdentifier).
        """
        if self.cluster is not None:
            return {"DBClusterIdentifier": self.cluster.cluster_identifier}
        assert isinstance(self.instance, aws.rds.Instance)
        return {"DBInstanceIdentifier": self.instance.identifier}


def _proxy(ctx: Context, net: Network, server: _Server
           ) -> tuple[aws.rds.Proxy, aws.rds.ProxyTarget, list[pulumi.Resource]]:
    """RDS Proxy in front of the server, with its own security group and secret access.

    The proxy reads the secret with its role. AWS's setup pages list no network path for
    that, but the group also lets it reach the Secrets Manager endpoint (443): that costs
    nothing, and a proxy that cannot read the secret never becomes available.
    """
    secret_arn = server.secret_arn
    # Auto-named, like the other groups (network.py): the replacement may coexist.
    proxy_sg = aws.ec2.SecurityGroup(
        "proxy-sg", vpc_id=net.vpc.id, description="RDS Proxy, reachable from the app only",
        tags={"Name": ctx.name("proxy-sg")}, opts=ctx.opts(),
    )
    rules = [*allow_postgres(ctx, "app-to-proxy", net.app_sg, proxy_sg),
             *allow_postgres(ctx, "proxy-to-db", proxy_sg, net.db_sg),
             *allow_tcp(ctx, "proxy-to-endpoints", proxy_sg, net.endpoint_sg, HTTPS_PORT,
                        "Secrets Manager via its endpoint")]
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
    # A cluster is registered as a whole: the proxy follows its writer across failovers.
    target = aws.rds.ProxyTarget(
        "db-proxy-target", db_proxy_name=proxy.name, target_group_name=target_group.name,
        db_instance_identifier=(server.instance.identifier if server.cluster is None
                                else None),
        db_cluster_identifier=(server.cluster.cluster_identifier if server.cluster is not None
                               else None),
        opts=ctx.opts(depends_on=server.ready),
    )
    return proxy, target, rules
