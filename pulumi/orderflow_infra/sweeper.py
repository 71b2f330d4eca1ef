"""The outbox sweeper box: `EventBridge (1 min) -> Lambda: outbox sweeper` of the diagram."""

from __future__ import annotations

import pulumi
import pulumi_aws as aws

from orderflow_infra.context import Context
from orderflow_infra.functions import AppArgs, app_function
from orderflow_infra.packaging import HANDLERS


class OutboxSweeper(pulumi.ComponentResource):
    """Re-relays whatever the API's relay left unsent, on chalice's schedule (every minute).

    Its schedule target waits for the migration like the function does, so the first sweep
    runs new code against the new schema.
    """

    functions: dict[str, aws.lambda_.Function]
    log_groups: dict[str, aws.cloudwatch.LogGroup]

    def __init__(self, name: str, ctx: Context, args: AppArgs,
                 opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("orderflow:sweeper:OutboxSweeper", name, {}, opts)
        ctx = ctx.within(self)
        function, log_group = app_function(ctx, "sweep-outbox", HANDLERS.sweep_outbox, args,
                                           ctx.cfg.lambda_timeout_seconds)
        self.functions, self.log_groups = {"sweep-outbox": function}, {"sweep-outbox": log_group}
        rule = aws.cloudwatch.EventRule(
            "sweep-outbox-schedule", name=ctx.name("sweep-outbox"),
            schedule_expression=args.artifact.schedule(HANDLERS.sweep_outbox), opts=ctx.opts(),
        )
        aws.cloudwatch.EventTarget("sweep-outbox-target", rule=rule.name, arn=function.arn,
                                   opts=ctx.opts(depends_on=args.after_migration))
        aws.lambda_.Permission(
            "sweep-outbox-invoke", action="lambda:InvokeFunction", function=function.name,
            principal="events.amazonaws.com", source_arn=rule.arn, opts=ctx.opts(),
        )
        self.register_outputs({"function_name": function.name, "schedule_rule": rule.name})
