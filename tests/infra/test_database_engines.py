"""`db_engine`: one RDS instance (default) or an Aurora PostgreSQL Serverless v2 cluster, with
the same secret handling, proxy option, encryption, backups and alarms."""

from __future__ import annotations

import json
from collections import Counter
from typing import Any

import pulumi
import pulumi_aws as aws

from orderflow_infra.config import load_config
from orderflow_infra.context import Context
from orderflow_infra.database import Database, DatabaseArgs
from orderflow_infra.network import Network
from orderflow_mocks.harness import Deployment, use_mocks

INSTANCE = "aws:rds/instance:Instance"
CLUSTER = "aws:rds/cluster:Cluster"
CLUSTER_INSTANCE = "aws:rds/clusterInstance:ClusterInstance"
CLUSTER_SECRET = "arn:aws:secretsmanager:eu-west-1:123456789012:secret:rds!cluster-Ab"


def _counts(stack: Deployment) -> Counter[str]:
    return Counter(r.typ for r in stack.resources)


def _env(stack: Deployment) -> list[dict[str, Any]]:
    envs = [fn.inputs["environment"]["variables"]
            for fn in stack.of_type("aws:lambda/function:Function")]
    for task in stack.of_type("aws:ecs/taskDefinition:TaskDefinition"):
        (container,) = json.loads(task.inputs["containerDefinitions"])
        envs.append({e["name"]: e["value"] for e in container["environment"]})
    return envs


def test_the_default_engine_is_one_rds_instance(lambda_stack: Deployment) -> None:
    counts = _counts(lambda_stack)
    assert (counts[INSTANCE], counts[CLUSTER], counts[CLUSTER_INSTANCE]) == (1, 0, 0)


def test_aurora_is_a_serverless_v2_cluster_with_the_configured_capacity(
    aurora_stack: Deployment,
) -> None:
    counts = _counts(aurora_stack)
    assert (counts[INSTANCE], counts[CLUSTER], counts[CLUSTER_INSTANCE]) == (0, 1, 1)
    (cluster,) = aurora_stack.of_type(CLUSTER)
    inputs = cluster.inputs
    assert (inputs["engine"], inputs["engineMode"]) == ("aurora-postgresql", "provisioned")
    assert inputs["serverlessv2ScalingConfiguration"] == {"minCapacity": 1, "maxCapacity": 8}
    (instance,) = aurora_stack.of_type(CLUSTER_INSTANCE)
    assert instance.inputs["instanceClass"] == "db.serverless"
    assert instance.inputs["clusterIdentifier"] == f"{cluster.name}-id"
    assert instance.inputs["publiclyAccessible"] is False


def test_aurora_keeps_the_instances_guarantees(aurora_stack: Deployment) -> None:
    (cluster,) = aurora_stack.of_type(CLUSTER)
    inputs = cluster.inputs
    assert inputs["manageMasterUserPassword"] is True
    assert "masterPassword" not in inputs and "masterUserSecretKmsKeyId" not in inputs
    assert inputs["storageEncrypted"] is True
    assert inputs["backupRetentionPeriod"] == 7
    assert inputs["deletionProtection"] is True
    assert (inputs["skipFinalSnapshot"], inputs["finalSnapshotIdentifier"]) == (
        False, "orderflow-test-db-final")
    assert inputs["vpcSecurityGroupIds"] == ["db-sg-id"]
    (params,) = aurora_stack.of_type("aws:rds/clusterParameterGroup:ClusterParameterGroup")
    assert params.inputs["family"] == "aurora-postgresql16"
    assert {"name": "rds.force_ssl", "value": "1"} in params.inputs["parameters"]


def test_the_app_connects_to_the_writer_with_the_clusters_managed_secret(
    aurora_stack: Deployment,
) -> None:
    (cluster,) = aurora_stack.of_type(CLUSTER)
    for env in _env(aurora_stack):
        assert env["DB_HOST"] == cluster.state["endpoint"]
        assert env["DB_SECRET_ARN"] == CLUSTER_SECRET
    assert aurora_stack.outputs["db_secret_arn"] == CLUSTER_SECRET


def test_migrations_wait_for_the_clusters_writer_instance(base_config: dict[str, str]) -> None:
    """A cluster without an instance accepts no connection: `ready` (what the migration
    invocation depends on) must hold the instance too."""
    use_mocks({**base_config, "db_engine": "aurora-serverless"})
    seen: dict[str, Any] = {}

    @pulumi.runtime.test
    def run() -> pulumi.Output[None]:
        ctx = Context.create(load_config())
        db = Database("database", ctx, DatabaseArgs(network=Network("network", ctx)))
        seen["ready"] = [type(r) for r in db.ready]
        return db.host.apply(lambda host: seen.update(host=host))

    run()
    assert aws.rds.ClusterInstance in seen["ready"] and aws.rds.Cluster in seen["ready"]
    assert seen["host"] == "orderflow-test-db.cluster-abc.eu-west-1.rds.amazonaws.com"


def test_aurora_behind_rds_proxy_registers_the_cluster_and_adds_a_reader_for_multi_az(
    aurora_proxy_stack: Deployment,
) -> None:
    (target,) = aurora_proxy_stack.of_type("aws:rds/proxyTarget:ProxyTarget")
    assert target.inputs["dbClusterIdentifier"] == "orderflow-test-db"
    assert "dbInstanceIdentifier" not in target.inputs
    (proxy,) = aurora_proxy_stack.of_type("aws:rds/proxy:Proxy")
    (auth,) = proxy.inputs["auths"]
    assert auth["secretArn"] == CLUSTER_SECRET
    for env in _env(aurora_proxy_stack):
        assert env["DB_HOST"] == proxy.state["endpoint"]
        assert env["DB_PREPARED_STATEMENTS"] == "off"
    assert len(aurora_proxy_stack.of_type(CLUSTER_INSTANCE)) == 2


def _alarms(stack: Deployment) -> dict[str, dict[str, Any]]:
    return {a.inputs["name"].removeprefix("orderflow-test-"): a.inputs
            for a in stack.of_type("aws:cloudwatch/metricAlarm:MetricAlarm")}


def test_aurora_alarms_watch_the_cluster_and_its_capacity(aurora_stack: Deployment) -> None:
    alarms = _alarms(aurora_stack)
    cluster = {"DBClusterIdentifier": "orderflow-test-db"}
    for key, metric in (("db-cpu", "CPUUtilization"), ("db-connections", "DatabaseConnections"),
                        ("db-capacity", "ACUUtilization")):
        assert (alarms[key]["namespace"], alarms[key]["metricName"],
                alarms[key]["dimensions"]) == ("AWS/RDS", metric, cluster)
    assert alarms["db-capacity"]["threshold"] == 90


def test_rds_alarms_watch_the_instance_and_have_no_capacity_alarm(
    lambda_stack: Deployment,
) -> None:
    alarms = _alarms(lambda_stack)
    assert alarms["db-cpu"]["dimensions"] == {"DBInstanceIdentifier": "orderflow-test-db"}
    assert "db-capacity" not in alarms


def test_the_aurora_dashboard_graphs_capacity_by_cluster(aurora_stack: Deployment) -> None:
    (dashboard,) = aurora_stack.of_type("aws:cloudwatch/dashboard:Dashboard")
    body = json.loads(dashboard.inputs["dashboardBody"])
    rds = {(line[1], line[2], line[3]) for w in body["widgets"] if w["type"] == "metric"
           for line in w["properties"]["metrics"] if line[0] == "AWS/RDS"}
    assert rds == {(name, "DBClusterIdentifier", "orderflow-test-db") for name in (
        "CPUUtilization", "DatabaseConnections", "ServerlessDatabaseCapacity", "ACUUtilization")}
