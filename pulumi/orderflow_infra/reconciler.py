"""The reconciler box: `EventBridge (every N min) -> Lambda: reconciler`, the scheduled run of
`python -m processor admin reconcile` (processor/ops/reconciler.py)."""

from __future__ import annotations

import pulumi
import pulumi_aws as aws

from orderflow_infra import iam
from orderflow_infra.context import Context
from orderflow_infra.functions import AppArgs, app_function, relay_statements
from orderflow_infra.packaging import HANDLERS

# A run reads at most a few pages from the provider and the database; it must end well before
# the next one starts (reserved concurrency 1 also keeps two runs from overlapping).
TIMEOUT_SECONDS = 240


def rate_expression(minutes: int) -> str:
    """EventBridge's rate syntax: the unit is singular for 1 (`rate(1 minute)`)."""
    return f"rate({minutes} minute{'' if minutes == 1 else 's'})"


class Reconciler(pulumi.ComponentResource):
    """Compares our records with the payment provider on the `reconcile_interval_minutes`
    schedule and reports findings as metrics (the alarm and dashboard in Monitoring).

    It may re-send outbox records (`--fix`) and read queue depths (the `admin check` part), so
    it gets the relay's grants plus reading the DLQ's attributes. The setting
    `reconcile_fix` reaches it as RECONCILE_FIX.
    """

    functions: dict[str, aws.lambda_.Function]
    log_groups: dict[str, aws.cloudwatch.LogGroup]
    rule: aws.cloudwatch.EventRule

    def __init__(self, name: str, ctx: Context, args: AppArgs,
                 opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("orderflow:reconciler:Reconciler", name, {}, opts)
        ctx = ctx.within(self)
        cfg, msg = ctx.cfg, args.messaging
        grants = [*relay_statements(cfg, args.database, msg, args.payments),
                  iam.allow(["sqs:GetQueueAttributes"], [msg.dlq.arn])]
        function, log_group = app_function(
            ctx, "reconcile", HANDLERS.reconcile, args, TIMEOUT_SECONDS,
            {"RECONCILE_FIX": "true" if cfg.reconcile_fix else "false"}, grants,
            reserved_concurrency=1,
        )
        self.functions, self.log_groups = {"reconcile": function}, {"reconcile": log_group}
        self.rule = aws.cloudwatch.EventRule(
            "reconcile-schedule", name=ctx.name("reconcile"),
            schedule_expression=rate_expression(cfg.reconcile_interval_minutes),
            opts=ctx.opts(),
        )
        aws.cloudwatch.EventTarget("reconcile-target", rule=self.rule.name, arn=function.arn,
                                   opts=ctx.opts(depends_on=args.after_migration))
        aws.lambda_.Permission(
            "reconcile-invoke", action="lambda:InvokeFunction", function=function.name,
            principal="events.amazonaws.com", source_arn=self.rule.arn, opts=ctx.opts(),
        )
        self.register_outputs({"function_name": function.name, "schedule_rule": self.rule.name})
