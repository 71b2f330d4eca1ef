"""The reconciler box under mocks: its function, schedule (a stack setting), one run at a time,
its grants, and the findings alarm that notifies the operations topic."""

from __future__ import annotations

import json

import pytest

from orderflow_infra.reconciler import rate_expression
from orderflow_mocks.harness import Deployment, deploy

FUNCTION = "aws:lambda/function:Function"


def test_the_reconciler_function_runs_the_apps_reconcile_handler_one_run_at_a_time(
        lambda_stack: Deployment) -> None:
    function = lambda_stack.named("reconcile", FUNCTION)
    assert function.inputs["handler"] == "app.reconcile"
    assert function.inputs["reservedConcurrentExecutions"] == 1
    assert function.inputs["environment"]["variables"]["RECONCILE_FIX"] == "false"
    assert "reconcile" in lambda_stack.outputs["log_group_names"]


def test_it_runs_every_five_minutes_by_default_on_a_rule_that_targets_it(
        lambda_stack: Deployment) -> None:
    rule = lambda_stack.named("reconcile-schedule")
    assert rule.inputs["scheduleExpression"] == "rate(5 minutes)"
    target = lambda_stack.named("reconcile-target")
    assert target.inputs["arn"] == lambda_stack.named("reconcile", FUNCTION).state["arn"]
    permission = lambda_stack.named("reconcile-invoke")
    assert permission.inputs["principal"] == "events.amazonaws.com"
    assert permission.inputs["sourceArn"] == rule.state["arn"]
    migration = lambda_stack.named("migrate-run")
    assert lambda_stack.depends_on(target, migration)


@pytest.mark.parametrize(("minutes", "expression"), [(1, "rate(1 minute)"),
                                                      (15, "rate(15 minutes)")])
def test_the_interval_and_the_fix_setting_come_from_the_stack_config(
        base_config: dict[str, str], minutes: int, expression: str) -> None:
    stack = deploy({**base_config, "reconcile_interval_minutes": str(minutes),
                    "reconcile_fix": "true"})
    assert stack.named("reconcile-schedule").inputs["scheduleExpression"] == expression
    variables = stack.named("reconcile", FUNCTION).inputs["environment"]["variables"]
    assert variables["RECONCILE_FIX"] == "true"
    alarm = stack.named("alarm-reconciler-findings")
    assert alarm.inputs["period"] == minutes * 60
    assert rate_expression(minutes) == expression


def test_the_findings_alarm_watches_the_run_total_and_notifies_the_operations_topic(
        lambda_stack: Deployment) -> None:
    alarm = lambda_stack.named("alarm-reconciler-findings")
    assert alarm.inputs["metricName"] == "ReconcilerFindingsTotal"
    assert alarm.inputs["namespace"] == "orderflow/test"
    assert alarm.inputs["threshold"] == 1
    assert alarm.inputs["comparisonOperator"] == "GreaterThanOrEqualToThreshold"
    topic = lambda_stack.outputs["operations_topic_arn"]
    assert alarm.inputs["alarmActions"] == [topic]
    assert alarm.inputs["okActions"] == [topic]


def test_the_reconciler_may_resend_outbox_records_and_read_both_queues_but_not_consume(
        lambda_stack: Deployment) -> None:
    (policy,) = [p for p in lambda_stack.of_type("aws:iam/rolePolicy:RolePolicy")
                 if p.name == "reconcile-role-policy"]
    document = policy.inputs["policy"]
    statements = json.loads(document) if isinstance(document, str) else document
    actions = {a for s in statements["Statement"] for a in s["Action"]}
    assert {"sqs:SendMessage", "sqs:GetQueueAttributes", "sns:Publish"} <= actions
    assert "sqs:ReceiveMessage" not in actions and "sqs:DeleteMessage" not in actions
