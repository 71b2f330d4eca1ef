"""Assembles the stack from the boxes of the README's architecture diagram.

A function (not import side effects) so tests can set mocks first. Config is validated, and
the Docker check made, before any resource is declared.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import pulumi

from orderflow_infra import deployed
from orderflow_infra.api import Api
from orderflow_infra.config import load_config
from orderflow_infra.context import Context
from orderflow_infra.database import Database, DatabaseArgs
from orderflow_infra.functions import AppArgs
from orderflow_infra.identity import Identity, identity_outputs
from orderflow_infra.messaging import Messaging
from orderflow_infra.migration import Migration
from orderflow_infra.monitoring import Monitoring, MonitoringArgs
from orderflow_infra.network import Network
from orderflow_infra.order_processor import OrderProcessor
from orderflow_infra.packaging import locate_artifact
from orderflow_infra.payments import Payments
from orderflow_infra.reconciler import Reconciler
from orderflow_infra.sweeper import OutboxSweeper
from orderflow_infra.worker_image import DockerProbe, docker_available, require_image_source


def build(docker: DockerProbe = docker_available) -> dict[str, Any]:
    """Declare every resource and return the stack outputs (never a secret value).

    `docker` says whether this machine can build the worker image; tests inject it.
    """
    cfg = load_config()
    require_image_source(cfg, docker)
    artifact = locate_artifact(cfg.artifact_dir)
    ctx = Context.create(cfg)
    previous = deployed.read_previous()

    network = Network("network", ctx, previous)
    database = Database("database", ctx, DatabaseArgs(network=network, previous=previous))
    messaging = Messaging("messaging", ctx)
    payments = Payments("payments", ctx)
    schema = AppArgs(network=network, database=database, messaging=messaging,
                     payments=payments, artifact=artifact)
    migration = Migration("migration", ctx, schema)
    code = dataclasses.replace(schema, migration=migration.run)  # new code after its schema
    identity = Identity("identity", ctx, code) if cfg.auth == "jwt" else None
    api = Api("api", ctx, code, identity)
    processor = OrderProcessor("order-processor", ctx, code)
    sweeper = OutboxSweeper("outbox-sweeper", ctx, code)
    reconciler = Reconciler("reconciler", ctx, code)
    functions = {**migration.functions, **api.functions, **sweeper.functions,
                 **reconciler.functions, **processor.functions}
    monitoring = Monitoring("monitoring", ctx, MonitoringArgs(
        messaging=messaging, database=database, api=api, functions=functions,
        worker=processor.worker))

    log_groups = {**migration.log_groups, **api.log_groups, **sweeper.log_groups,
                  **reconciler.log_groups, **processor.log_groups}
    outputs: dict[str, Any] = {
        "api_url": api.url,
        "stripe_webhook_url": api.webhook_url,
        "queue_url": messaging.queue.url,
        "dlq_url": messaging.dlq.url,
        "notification_topic_arn": messaging.notification_topic.arn,
        "operations_topic_arn": messaging.operations_topic.arn,
        "db_endpoint": database.host,
        "db_secret_arn": database.secret_arn,
        "processor_mode": cfg.processor,
        "log_group_names": {key: group.name for key, group in log_groups.items()},
        "dashboard_name": monitoring.dashboard.dashboard_name,
        deployed.OUTPUT_NAME: deployed.export(cfg, network.zones),
    }
    if api.api_key is not None:
        outputs["api_key_id"] = api.api_key.id
    if identity is not None:
        outputs.update(identity_outputs(identity, cfg.region))
    if processor.worker is not None:
        if processor.worker.repository is not None:
            outputs["ecr_repository_url"] = processor.worker.repository.repository_url
        outputs["processor_image"] = processor.worker.image
        outputs["ecs_cluster_name"] = processor.worker.cluster.name
        outputs["ecs_service_name"] = processor.worker.service.name
    return outputs


def main(docker: DockerProbe = docker_available) -> None:
    """Entry point for `pulumi up`: build and export."""
    for name, value in build(docker).items():
        pulumi.export(name, value)
