"""Least-privilege IAM: every role gets an inline policy listing concrete resource ARNs."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import pulumi
import pulumi_aws as aws

from orderflow_infra.context import Context

Statement = dict[str, Any]

# EC2 network-interface calls cannot be scoped to a resource; Lambda in a VPC needs them.
VPC_ENI_STATEMENT: Statement = {
    "Effect": "Allow",
    "Action": [
        "ec2:CreateNetworkInterface",
        "ec2:DescribeNetworkInterfaces",
        "ec2:DescribeSubnets",
        "ec2:DeleteNetworkInterface",
        "ec2:AssignPrivateIpAddresses",
        "ec2:UnassignPrivateIpAddresses",
    ],
    "Resource": ["*"],
}
# X-Ray has no resource-level permissions.
XRAY_STATEMENT: Statement = {
    "Effect": "Allow",
    "Action": ["xray:PutTraceSegments", "xray:PutTelemetryRecords"],
    "Resource": ["*"],
}
SQS_CONSUME = ["sqs:ReceiveMessage", "sqs:DeleteMessage", "sqs:ChangeMessageVisibility",
               "sqs:GetQueueAttributes"]
SQS_SEND = ["sqs:SendMessage", "sqs:GetQueueAttributes"]


def allow(actions: Sequence[str], resources: Sequence[pulumi.Input[str]]) -> Statement:
    """One Allow statement; resources may be Outputs (resolved by json_dumps)."""
    return {"Effect": "Allow", "Action": list(actions), "Resource": list(resources)}


def log_statement(log_group: aws.cloudwatch.LogGroup) -> Statement:
    """Write to one pre-created log group (no CreateLogGroup: the stack owns retention)."""
    return allow(["logs:CreateLogStream", "logs:PutLogEvents"],
                 [pulumi.Output.concat(log_group.arn, ":*")])


def secret_statement(secret_arn: pulumi.Input[str]) -> Statement:
    """Read the database master-user secret.

    No kms:Decrypt: RDS encrypts the secret with the AWS-managed `aws/secretsmanager` key,
    whose key policy already admits account principals calling through Secrets Manager.
    A customer-managed key would need kms:Decrypt on it here as well.
    """
    return allow(["secretsmanager:GetSecretValue", "secretsmanager:DescribeSecret"],
                 [secret_arn])


def ses_send_statement(sender_identity_arn: pulumi.Output[str], sender_email: str
                       ) -> Statement:
    """Send email as the configured sender, to any recipient.

    In the SES sandbox, SES also authorizes the send against each recipient's (verified)
    identity, so a policy naming only the sender identity is denied there. Hence every
    identity of this account and region, narrowed by the From address instead.
    """
    all_identities = sender_identity_arn.apply(
        lambda arn: ":".join(arn.split(":")[:5]) + ":identity/*")
    return {
        "Effect": "Allow",
        "Action": ["ses:SendEmail", "ses:SendRawEmail"],
        "Resource": [all_identities],
        "Condition": {"StringEquals": {"ses:FromAddress": sender_email}},
    }


@dataclass(frozen=True)
class GrantedRole:
    """A role and its policy; users depend on `policy` so permissions exist before first use."""

    role: aws.iam.Role
    policy: aws.iam.RolePolicy


def service_role(ctx: Context, name: str, service: str, statements: Sequence[Statement]
                 ) -> GrantedRole:
    """A role assumable by one AWS service, with its inline policy attached."""
    role = aws.iam.Role(
        name,
        assume_role_policy=pulumi.Output.json_dumps({
            "Version": "2012-10-17",
            "Statement": [{"Effect": "Allow", "Principal": {"Service": service},
                           "Action": "sts:AssumeRole"}],
        }),
        opts=ctx.opts(),
    )
    policy = aws.iam.RolePolicy(
        f"{name}-policy",
        role=role.id,
        policy=pulumi.Output.json_dumps({"Version": "2012-10-17",
                                         "Statement": list(statements)}),
        opts=ctx.opts(),
    )
    return GrantedRole(role=role, policy=policy)
