"""The order processor box: exactly one queue consumer, a Lambda function or a Fargate worker.

`processor: lambda` (the default) is the `process-orders` function behind an SQS event source
mapping; `processor: fargate` is the ECS worker (fargate.py). Switching removes the other
consumer in the same update: Pulumi creates the new one first and deletes the old one at the
end, so for part of that update both receive from the queue. That is safe, not avoided:
each message is processed by whoever receives it, through the same guarded steps, so an
order is never processed twice; after the update exactly one consumer remains.
"""

from __future__ import annotations

import pulumi
import pulumi_aws as aws

from orderflow_infra.context import Context
from orderflow_infra.fargate import FargateWorker, fargate_worker
from orderflow_infra.functions import AppArgs, app_function
from orderflow_infra.packaging import HANDLERS


class OrderProcessor(pulumi.ComponentResource):
    """`SQS orders -> Lambda: processor (or ECS Fargate worker)` of the diagram.

    `functions` holds `process-orders` in Lambda mode and nothing in Fargate mode; `worker`
    is the Fargate service in Fargate mode and None in Lambda mode.
    """

    functions: dict[str, aws.lambda_.Function]
    log_groups: dict[str, aws.cloudwatch.LogGroup]
    worker: FargateWorker | None

    def __init__(self, name: str, ctx: Context, args: AppArgs,
                 opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("orderflow:order_processor:OrderProcessor", name, {}, opts)
        ctx = ctx.within(self)
        outputs: dict[str, pulumi.Input[str]] = {"mode": ctx.cfg.processor}
        if ctx.cfg.processor == "fargate":
            self.worker = fargate_worker(ctx, args)
            self.functions, self.log_groups = {}, {"worker": self.worker.log_group}
            outputs.update(image=self.worker.image, cluster_name=self.worker.cluster.name,
                           service_name=self.worker.service.name)
        else:
            self.worker = None
            function, log_group = self._lambda_consumer(ctx, args)
            self.functions = {"process-orders": function}
            self.log_groups = {"process-orders": log_group}
            outputs.update(function_name=function.name)
        self.register_outputs(outputs)

    def _lambda_consumer(self, ctx: Context, args: AppArgs
                         ) -> tuple[aws.lambda_.Function, aws.cloudwatch.LogGroup]:
        """The `process-orders` function fed by the queue, reporting partial batch failures."""
        cfg = ctx.cfg
        function, log_group = app_function(ctx, "process-orders", HANDLERS.process_orders,
                                           args, cfg.lambda_timeout_seconds)
        aws.lambda_.EventSourceMapping(
            "process-orders-sqs",
            event_source_arn=args.messaging.queue.arn,
            function_name=function.arn,
            batch_size=cfg.sqs_batch_size,
            function_response_types=["ReportBatchItemFailures"],
            scaling_config=aws.lambda_.EventSourceMappingScalingConfigArgs(
                maximum_concurrency=cfg.sqs_max_concurrency
            ),
            opts=ctx.opts(depends_on=args.after_migration),
        )
        return function, log_group
