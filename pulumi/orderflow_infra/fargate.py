"""`processor: fargate`: the queue worker as an ECS service that scales on queue depth.

Declared by the OrderProcessor component (order_processor.py) in that mode only.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

import pulumi
import pulumi_aws as aws

from orderflow_infra import iam
from orderflow_infra.context import Context
from orderflow_infra.functions import AppArgs, app_environment, processor_statements
from orderflow_infra.messaging import Messaging
from orderflow_infra.worker_image import CPU_ARCHITECTURE, build_worker_image

CONTAINER_NAME = "worker"
WORKER_COMMAND = ["python", "-m", "processor", "worker"]
STOP_TIMEOUT_SECONDS = 60  # the worker finishes its in-flight batch on SIGTERM
SCALE_OUT_BACKLOG = 1  # any visible message wakes a worker (allows ecs_min_count = 0)
SCALE_IN_IDLE_MINUTES = 10


@dataclass(frozen=True)
class FargateWorker:
    """The worker service and what monitoring and outputs refer to."""

    repository: aws.ecr.Repository
    # `<repository>@sha256:...` when the stack builds the image; the override otherwise.
    image: pulumi.Output[str]
    cluster: aws.ecs.Cluster
    service: aws.ecs.Service
    log_group: aws.cloudwatch.LogGroup


def repository_arn(image_uri: str) -> str:
    """ARN of the ECR repository an image URI points into (config guarantees the format)."""
    registry, _, rest = image_uri.partition("/")
    account, region = registry.split(".")[0], registry.split(".")[3]
    name = rest.split("@")[0].split(":")[0]
    return f"arn:aws:ecr:{region}:{account}:repository/{name}"


def _step_policy(ctx: Context, name: str, resource_id: pulumi.Input[str], adjustment: int,
                 target: aws.appautoscaling.Target) -> aws.appautoscaling.Policy:
    return aws.appautoscaling.Policy(
        name, policy_type="StepScaling", resource_id=resource_id,
        scalable_dimension=target.scalable_dimension, service_namespace=target.service_namespace,
        step_scaling_policy_configuration=(
            aws.appautoscaling.PolicyStepScalingPolicyConfigurationArgs(
                adjustment_type="ChangeInCapacity", cooldown=60,
                metric_aggregation_type="Maximum",
                step_adjustments=[
                    aws.appautoscaling.PolicyStepScalingPolicyConfigurationStepAdjustmentArgs(
                        scaling_adjustment=adjustment,
                        metric_interval_lower_bound="0" if adjustment > 0 else None,
                        metric_interval_upper_bound=None if adjustment > 0 else "0",
                    )
                ],
            )
        ),
        opts=ctx.opts(),
    )


def _autoscaling(ctx: Context, cluster: aws.ecs.Cluster, service: aws.ecs.Service,
                 msg: Messaging) -> None:
    """Step scaling on ApproximateNumberOfMessagesVisible: out on backlog, in when idle."""
    cfg = ctx.cfg
    resource_id = pulumi.Output.concat("service/", cluster.name, "/", service.name)
    target = aws.appautoscaling.Target(
        "worker-scaling-target", service_namespace="ecs", resource_id=resource_id,
        scalable_dimension="ecs:service:DesiredCount", min_capacity=cfg.ecs_min_count,
        max_capacity=cfg.ecs_max_count, opts=ctx.opts(),
    )
    scale_out = _step_policy(ctx, "worker-scale-out", resource_id, 1, target)
    scale_in = _step_policy(ctx, "worker-scale-in", resource_id, -1, target)
    queue_dims = {"QueueName": msg.queue.name}
    aws.cloudwatch.MetricAlarm(
        "worker-backlog-high", name=ctx.name("worker-backlog-high"),
        namespace="AWS/SQS", metric_name="ApproximateNumberOfMessagesVisible",
        dimensions=queue_dims, statistic="Maximum", period=60, evaluation_periods=1,
        comparison_operator="GreaterThanOrEqualToThreshold", threshold=SCALE_OUT_BACKLOG,
        alarm_actions=[scale_out.arn], treat_missing_data="notBreaching", opts=ctx.opts(),
    )
    aws.cloudwatch.MetricAlarm(
        "worker-backlog-empty", name=ctx.name("worker-backlog-empty"),
        namespace="AWS/SQS", metric_name="ApproximateNumberOfMessagesVisible",
        dimensions=queue_dims, statistic="Maximum", period=60,
        evaluation_periods=SCALE_IN_IDLE_MINUTES, comparison_operator="LessThanThreshold",
        threshold=SCALE_OUT_BACKLOG, alarm_actions=[scale_in.arn],
        treat_missing_data="notBreaching", opts=ctx.opts(),
    )


def fargate_worker(ctx: Context, args: AppArgs) -> FargateWorker:
    """ECR repository, the worker image, cluster, task definition, service and autoscaling.

    The repository is force-deleted with its images: they are build output of this stack, so
    switching back to `lambda` (or destroying) removes them instead of failing on a non-empty
    repository.
    """
    cfg = ctx.cfg
    net, db, msg = args.network, args.database, args.messaging
    repository = aws.ecr.Repository(
        "processor-repo", name=ctx.name("processor"), image_tag_mutability="MUTABLE",
        image_scanning_configuration=aws.ecr.RepositoryImageScanningConfigurationArgs(
            scan_on_push=True),
        force_delete=True,
        opts=ctx.opts(),
    )
    if cfg.processor_image is None:
        image = build_worker_image(ctx, repository)
        image_repository_arn: pulumi.Input[str] = repository.arn
    else:
        image = pulumi.Output.from_input(cfg.processor_image)
        image_repository_arn = repository_arn(cfg.processor_image)
    aws.ecr.LifecyclePolicy(
        "processor-repo-lifecycle", repository=repository.name,
        policy=json.dumps({"rules": [{
            "rulePriority": 1, "description": "keep the last 20 images",
            "selection": {"tagStatus": "any", "countType": "imageCountMoreThan",
                          "countNumber": 20},
            "action": {"type": "expire"},
        }]}),
        opts=ctx.opts(),
    )
    log_group = aws.cloudwatch.LogGroup(
        "worker-logs", name=f"/ecs/{ctx.name('worker')}",
        retention_in_days=cfg.log_retention_days, opts=ctx.opts(),
    )
    execution_role = iam.service_role(ctx, "worker-execution-role", "ecs-tasks.amazonaws.com", [
        # GetAuthorizationToken is account-wide by design; image pulls are scoped.
        iam.allow(["ecr:GetAuthorizationToken"], ["*"]),
        iam.allow(["ecr:BatchGetImage", "ecr:GetDownloadUrlForLayer",
                   "ecr:BatchCheckLayerAvailability"], [image_repository_arn]),
        iam.log_statement(log_group),
    ])
    task_role = iam.service_role(ctx, "worker-task-role", "ecs-tasks.amazonaws.com",
                                 processor_statements(cfg, db, msg, args.payments))
    cluster = aws.ecs.Cluster("cluster", name=ctx.name("cluster"), opts=ctx.opts())

    env = app_environment(ctx, db, msg, args.payments)
    env["WORKER_CONCURRENCY"] = str(cfg.worker_concurrency)
    container = {
        "name": CONTAINER_NAME,
        "image": image,
        "essential": True,
        "command": WORKER_COMMAND,
        "stopTimeout": STOP_TIMEOUT_SECONDS,
        "environment": [{"name": k, "value": v} for k, v in sorted(env.items())],
        "logConfiguration": {
            "logDriver": "awslogs",
            "options": {"awslogs-group": log_group.name, "awslogs-region": cfg.region,
                        "awslogs-stream-prefix": CONTAINER_NAME},
        },
    }
    task = aws.ecs.TaskDefinition(
        "worker-task", family=ctx.name("worker"), cpu=str(cfg.ecs_cpu),
        memory=str(cfg.ecs_memory_mb), network_mode="awsvpc",
        requires_compatibilities=["FARGATE"],
        runtime_platform=aws.ecs.TaskDefinitionRuntimePlatformArgs(
            operating_system_family="LINUX", cpu_architecture=CPU_ARCHITECTURE),
        execution_role_arn=execution_role.role.arn, task_role_arn=task_role.role.arn,
        container_definitions=pulumi.Output.json_dumps([container]),
        opts=ctx.opts(depends_on=[execution_role.policy, task_role.policy]),
    )
    service = aws.ecs.Service(
        "worker-service", name=ctx.name("worker"), cluster=cluster.arn,
        task_definition=task.arn, desired_count=cfg.ecs_desired_count, launch_type="FARGATE",
        network_configuration=aws.ecs.ServiceNetworkConfigurationArgs(
            subnets=net.subnet_ids, security_groups=[net.app_sg.id], assign_public_ip=False),
        deployment_circuit_breaker=aws.ecs.ServiceDeploymentCircuitBreakerArgs(
            enable=True, rollback=True),
        # Autoscaling owns the running count after creation.
        opts=ctx.opts(depends_on=[*args.after_migration, *net.endpoints],
                      ignore_changes=["desiredCount"]),
    )
    _autoscaling(ctx, cluster, service, msg)
    return FargateWorker(repository=repository, image=image, cluster=cluster,
                         service=service, log_group=log_group)
