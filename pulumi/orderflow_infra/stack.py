"""Assembles the stack; a function (not import side effects) so tests can set mocks first."""

from __future__ import annotations

from typing import Any

import pulumi

from orderflow_infra.config import load_config
from orderflow_infra.context import Context
from orderflow_infra.database import create_database
from orderflow_infra.fargate import create_fargate
from orderflow_infra.functions import create_functions
from orderflow_infra.messaging import create_messaging
from orderflow_infra.monitoring import create_monitoring
from orderflow_infra.network import create_network
from orderflow_infra.packaging import locate_artifact
from orderflow_infra.worker_image import DockerProbe, docker_available, require_image_source


def build(docker: DockerProbe = docker_available) -> dict[str, Any]:
    """Declare every resource and return the stack outputs (never a secret value).

    `docker` says whether this machine can build the worker image; tests inject it.
    """
    cfg = load_config()
    require_image_source(cfg, docker)
    artifact = locate_artifact(cfg.artifact_dir)
    ctx = Context.create(cfg)
    net = create_network(ctx)
    db = create_database(ctx, net)
    msg = create_messaging(ctx)
    fns = create_functions(ctx, net, db, msg, artifact)
    monitoring = create_monitoring(ctx, msg, db, fns)

    log_groups = {key: group.name for key, group in fns.log_groups.items()}
    outputs: dict[str, Any] = {
        "api_url": fns.api_url,
        "queue_url": msg.queue.url,
        "dlq_url": msg.dlq.url,
        "notification_topic_arn": msg.notification_topic.arn,
        "operations_topic_arn": msg.operations_topic.arn,
        "db_endpoint": db.host,
        "db_secret_arn": db.secret_arn,
        "processor_mode": cfg.processor,
        "log_group_names": log_groups,
        "dashboard_name": monitoring.dashboard.dashboard_name,
    }
    if fns.api_key is not None:
        outputs["api_key_id"] = fns.api_key.id
    if cfg.processor == "fargate":
        worker = create_fargate(ctx, net, db, msg, fns.migration)
        outputs["ecr_repository_url"] = worker.repository.repository_url
        outputs["processor_image"] = worker.image
        log_groups["worker"] = worker.log_group.name
        outputs["ecs_cluster_name"] = worker.cluster.name
        outputs["ecs_service_name"] = worker.service.name
    return outputs


def main(docker: DockerProbe = docker_available) -> None:
    """Entry point for `pulumi up`: build and export."""
    for name, value in build(docker).items():
        pulumi.export(name, value)
