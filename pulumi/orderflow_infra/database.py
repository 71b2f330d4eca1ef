"""Private, encrypted PostgreSQL whose master password lives only in Secrets Manager.

One RDS instance by default; `db_engine: aurora-serverless` is the path past one instance's
size: an Aurora Serverless v2 cluster that scales between `db_min/max_capacity_acu`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import pulumi
import pulumi_aws as aws

from orderflow_infra import iam
from orderflow_infra.context import Context
from orderflow_infra.network import POSTGRES_PORT, Network, allow_postgres

MASTER_USERNAME = "orderflow_admin"


@dataclass(frozen=True)
class _Server:
    """What either engine hands to the proxy and to Database."""

    instance: aws.rds.Instance | aws.rds.ClusterInstance
    cluster: aws.rds.Cluster | None
    address: pulumi.Output[str]
    secret_arn: pulumi.Output[str]
    ready: list[pulumi.Resource]


def _master_secret_arn(secrets: Sequence[aws.rds.outputs.InstanceMasterUserSecret |
                                         aws.rds.outputs.ClusterMasterUserSecret] | None
                       ) -> str:
    """The RDS-managed secret; its absence would leave the app with no credentials."""
    arn = secrets[0].secret_arn if secrets else None
    if not arn:
        raise pulumi.RunError("RDS reported no master user secret for the database")
    return arn


def _guarded_server_args(ctx: Context, net: Network, subnet_group: aws.rds.SubnetGroup
                         ) -> dict[str, Any]:
    """The arguments the RDS instance and the Aurora cluster share, written once so that both
    engines keep the same guarantees: a managed master secret, encryption, the private
    network, backups, deletion protection and a final snapshot."""
    cfg = ctx.cfg
    return {
        "manage_master_user_password": True,
        "port": POSTGRES_PORT,
        "db_subnet_group_name": subnet_group.name,
        "vpc_security_group_ids": [net.db_sg.id],
        "storage_encrypted": True,
        "backup_retention_period": cfg.db_backup_retention_days,
        "deletion_protection": cfg.db_deletion_protection,
        "copy_tags_to_snapshot": True,
        "skip_final_snapshot": False,
        "final_snapshot_identifier": ctx.name("db-final"),
    }


def _rds_instance(ctx: Context, net: Network, subnet_group: aws.rds.SubnetGroup) -> _Server:
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
        engine_version=cfg.db_engine_version,
        instance_class=cfg.db_instance_class,
        allocated_storage=cfg.db_allocated_storage_gb,
        storage_type="gp3",
        db_name=cfg.db_name,
        username=MASTER_USERNAME,
        parameter_group_name=params.name,
        publicly_accessible=False,
        multi_az=cfg.db_multi_az,
        auto_minor_version_upgrade=True,
        **_guarded_server_args(ctx, net, subnet_group),
        # The identifier stays fixed (snapshots and operators refer to it), so a replacement
        # (a changed username or storage_encrypted forces one) deletes first: refused while
        # deletion protection is on, otherwise after the final snapshot. Creating the
        # replacement first would collide on the identifier.
        opts=ctx.opts(delete_before_replace=True),
    )
    return _Server(instance=instance, cluster=None, address=instance.address,
                   secret_arn=instance.master_user_secrets.apply(_master_secret_arn),
                   ready=[instance])


def _aurora_serverless(ctx: Context, net: Network, subnet_group: aws.rds.SubnetGroup
                       ) -> _Server:
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
        engine="aurora-postgresql",
        engine_mode="provisioned",  # Serverless v2 runs in provisioned mode
        engine_version=cfg.db_engine_version,
        database_name=cfg.db_name,
        master_username=MASTER_USERNAME,
        db_cluster_parameter_group_name=params.name,
        serverlessv2_scaling_configuration=aws.rds.ClusterServerlessv2ScalingConfigurationArgs(
            min_capacity=cfg.db_min_capacity_acu, max_capacity=cfg.db_max_capacity_acu),
        **_guarded_server_args(ctx, net, subnet_group),
        # A fixed identifier, as for the RDS instance: a replacement deletes first, which
        # deletion protection refuses.
        opts=ctx.opts(delete_before_replace=True),
    )
    instances = [
        aws.rds.ClusterInstance(
            # Auto-named: a replaced instance joins the cluster before the old one leaves.
            f"db-instance-{index}",
            cluster_identifier=cluster.id,
            instance_class="db.serverless",
            engine=cluster.engine.apply(aws.rds.EngineType),
            engine_version=cluster.engine_version,
            db_subnet_group_name=subnet_group.name,
            publicly_accessible=False,
            auto_minor_version_upgrade=True,
            opts=ctx.opts(),
        )
        for index in range(2 if cfg.db_multi_az else 1)
    ]
    return _Server(instance=instances[0], cluster=cluster, address=cluster.endpoint,
                   secret_arn=cluster.master_user_secrets.apply(_master_secret_arn),
                   ready=[cluster, *instances])


@dataclass(frozen=True)
class DatabaseArgs:
    """What the database needs from other boxes: the network it lives in."""

    network: Network


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
    ready: list[pulumi.Resource]

    def __init__(self, name: str, ctx: Context, args: DatabaseArgs,
                 opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("orderflow:database:Database", name, {}, opts)
        ctx = ctx.within(self)
        net = args.network
        subnet_group = aws.rds.SubnetGroup("db-subnets", name=ctx.name("db"),
                                           subnet_ids=net.subnet_ids, opts=ctx.opts())
        if ctx.cfg.db_engine == "aurora-serverless":
            server = _aurora_serverless(ctx, net, subnet_group)
        else:
            server = _rds_instance(ctx, net, subnet_group)
        self.instance, self.cluster = server.instance, server.cluster
        self.port = POSTGRES_PORT
        self.secret_arn = server.secret_arn
        if ctx.cfg.rds_proxy_enabled:
            proxy, target = _proxy(ctx, net, server)
            self.host, self.ready = proxy.endpoint, [*server.ready, target]
        else:
            allow_postgres(ctx, "app-to-db", net.app_sg, net.db_sg)
            self.host, self.ready = server.address, server.ready
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
           ) -> tuple[aws.rds.Proxy, aws.rds.ProxyTarget]:
    """RDS Proxy in front of the server, with its own security group and secret access."""
    secret_arn = server.secret_arn
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
    # A cluster is registered as a whole: the proxy follows its writer across failovers.
    target = aws.rds.ProxyTarget(
        "db-proxy-target", db_proxy_name=proxy.name, target_group_name=target_group.name,
        db_instance_identifier=(server.instance.identifier if server.cluster is None
                                else None),
        db_cluster_identifier=(server.cluster.cluster_identifier if server.cluster is not None
                               else None),
        opts=ctx.opts(depends_on=server.ready),
    )
    return proxy, target
