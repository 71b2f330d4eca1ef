"""Database privacy, secret hygiene, network reachability and least-privilege IAM."""

from __future__ import annotations

import json
import re
from typing import Any

import pytest
from pulumi.runtime import rpc

from orderflow_mocks.harness import FAKE_API_KEY_VALUE, Deployment, deploy

# Actions AWS cannot scope to a resource; anything else must name concrete ARNs.
UNSCOPABLE = {
    "ec2:CreateNetworkInterface",
    "ec2:DescribeNetworkInterfaces",
    "ec2:DescribeSubnets",
    "ec2:DeleteNetworkInterface",
    "ec2:AssignPrivateIpAddresses",
    "ec2:UnassignPrivateIpAddresses",
    "xray:PutTraceSegments",
    "xray:PutTelemetryRecords",
    "ecr:GetAuthorizationToken",
}
SECRET_KEY = re.compile(r"password|secretstring|privatekey", re.IGNORECASE)
ARN = "arn:aws:{service}:eu-west-1:123456789012:{resource}"
QUEUE_ARN = ARN.format(service="sqs", resource="orderflow-test-orders")
DLQ_ARN = ARN.format(service="sqs", resource="orderflow-test-orders-dlq")
DB_SECRET_ARN = ARN.format(service="secretsmanager", resource="secret:rds!db-1-Ab")
# SES authorizes sandbox sends against recipient identities too; the From address scopes it.
SES_SEND = {
    "Effect": "Allow",
    "Action": ["ses:SendEmail", "ses:SendRawEmail"],
    "Resource": [ARN.format(service="ses", resource="identity/*")],
    "Condition": {"StringEquals": {"ses:FromAddress": "orders@example.com"}},
}
DLQ_SEND = {"Effect": "Allow", "Action": ["sqs:SendMessage"], "Resource": [DLQ_ARN]}
# Roles of code that talks to the database (the proxy role only exists with the proxy).
DB_CLIENT_ROLES = ("api-role", "sweep-outbox-role", "migrate-role", "process-orders-role",
                   "worker-task-role", "reconcile-role")
# The reconciler reports DLQ depth (`admin check`'s dead_letters) and reads nothing else there.
DLQ_DEPTH = {"Effect": "Allow", "Action": ["sqs:GetQueueAttributes"], "Resource": [DLQ_ARN]}


def _policies(stack: Deployment) -> dict[str, list[dict[str, Any]]]:
    """Role name -> statements of its inline policy."""
    return {
        r.inputs["role"].removesuffix("-id"): json.loads(r.inputs["policy"])["Statement"]
        for r in stack.of_type("aws:iam/rolePolicy:RolePolicy")
    }


def _walk(value: Any, path: str = "") -> list[tuple[str, Any]]:
    if isinstance(value, dict):
        return [item for k, v in value.items() for item in _walk(v, f"{path}.{k}")]
    if isinstance(value, list):
        return [item for i, v in enumerate(value) for item in _walk(v, f"{path}[{i}]")]
    return [(path, value)]


def test_database_is_private_encrypted_backed_up_and_postgres_16(any_stack: Deployment) -> None:
    (db,) = any_stack.of_type("aws:rds/instance:Instance")
    inputs = db.inputs
    assert inputs["publiclyAccessible"] is False
    assert inputs["storageEncrypted"] is True
    assert inputs["manageMasterUserPassword"] is True
    assert inputs["engine"] == "postgres" and int(inputs["engineVersion"].split(".")[0]) >= 16
    assert inputs["backupRetentionPeriod"] >= 1
    assert inputs["vpcSecurityGroupIds"] == ["db-sg-id"]


def _is_secret(value: Any) -> bool:
    """Whether the engine receives `value` as a Pulumi secret (encrypted in state)."""
    return isinstance(value, dict) and value.get(rpc._special_sig_key) == rpc._special_secret_sig


def test_no_plaintext_secret_in_any_input_or_output(any_stack: Deployment) -> None:
    for resource in any_stack.resources:
        # A secret input (e.g. the image's ECR push token) is encrypted in state; fine.
        plain = {key: value for key, value in resource.inputs.items() if not _is_secret(value)}
        for path, value in _walk(plain):
            if SECRET_KEY.search(path) and not isinstance(value, bool):
                pytest.fail(f"{resource.name}{path} looks like a secret value")
            assert FAKE_API_KEY_VALUE not in str(value)
        if resource.typ == "aws:lambda/function:Function":
            names = resource.inputs["environment"]["variables"]
            assert not [n for n in names if SECRET_KEY.search(n) or n == "DATABASE_URL"]
    assert not [p for p, _ in _walk(any_stack.outputs) if SECRET_KEY.search(p)]
    assert FAKE_API_KEY_VALUE not in json.dumps(any_stack.outputs)


def test_postgres_port_is_open_only_from_the_app_security_group(any_stack: Deployment) -> None:
    ingress = any_stack.of_type("aws:vpc/securityGroupIngressRule:SecurityGroupIngressRule")
    to_db = [r.inputs for r in ingress if r.inputs["securityGroupId"] == "db-sg-id"]
    assert to_db == [
        {
            "description": "PostgreSQL",
            "fromPort": 5432,
            "toPort": 5432,
            "securityGroupId": "db-sg-id",
            "referencedSecurityGroupId": "app-sg-id",
            "ipProtocol": "tcp",
        }
    ]
    assert not [r for r in ingress if "cidrIpv4" in r.inputs or "cidrIpv6" in r.inputs]


def test_rds_proxy_sits_between_app_and_db_when_enabled(base_config: dict[str, str]) -> None:
    stack = deploy({**base_config, "rds_proxy_enabled": "true"})
    (proxy,) = stack.of_type("aws:rds/proxy:Proxy")
    assert proxy.inputs["requireTls"] is True
    assert proxy.inputs["auths"][0]["secretArn"].startswith("arn:aws:secretsmanager:")
    ingress = stack.of_type("aws:vpc/securityGroupIngressRule:SecurityGroupIngressRule")
    sources = {
        r.inputs["securityGroupId"]: r.inputs["referencedSecurityGroupId"]
        for r in ingress
        if r.inputs["fromPort"] == 5432
    }
    assert sources == {"db-sg-id": "proxy-sg-id", "proxy-sg-id": "app-sg-id"}
    env = stack.named("api", "aws:lambda/function:Function").inputs["environment"]["variables"]
    assert env["DB_HOST"] == proxy.state["endpoint"]
    assert env["DB_PREPARED_STATEMENTS"] == "off"  # a PREPARE would pin proxy connections
    assert stack.outputs["db_endpoint"] == proxy.state["endpoint"]


def test_vpc_reaches_aws_apis_through_endpoints_not_a_nat(any_stack: Deployment) -> None:
    services = {
        r.inputs["serviceName"].removeprefix("com.amazonaws.eu-west-1.")
        for r in any_stack.of_type("aws:ec2/vpcEndpoint:VpcEndpoint")
    }
    base = {"sqs", "sns", "email", "secretsmanager"}
    fargate = {"ecr.api", "ecr.dkr", "logs", "s3"}
    expected = base | fargate if any_stack.config["processor"] == "fargate" else base
    assert services == expected
    assert not any_stack.of_type("aws:ec2/natGateway:NatGateway")
    assert not any_stack.of_type("aws:ec2/internetGateway:InternetGateway")


def _dlq_statements(statements: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [s for s in statements if any(arn.endswith("-dlq") for arn in s["Resource"])]


def test_iam_data_actions_are_scoped_to_resource_arns(any_stack: Deployment) -> None:
    for role, statements in _policies(any_stack).items():
        for statement in statements:
            assert not [a for a in statement["Action"] if a.endswith("*")], role
            if "Condition" in statement:  # the only wildcard data grant, narrowed by sender
                assert statement == SES_SEND, role
            elif any("*" in arn.removesuffix(":*") for arn in statement["Resource"]):
                assert set(statement["Action"]) <= UNSCOPABLE, (role, statement)


def test_each_role_reaches_only_its_own_log_group_and_needed_services(
    lambda_stack: Deployment,
) -> None:
    policies = _policies(lambda_stack)
    relay = {"logs", "ec2", "secretsmanager", "sqs", "sns", "ses"}  # outbox relays
    expected_services = {"api": relay, "process-orders": relay, "sweep-outbox": relay,
                         "reconcile": relay,
                         "migrate": {"logs", "ec2", "secretsmanager"}}
    for key, services in expected_services.items():
        statements = policies[f"{key}-role"]
        assert {a.split(":")[0] for s in statements for a in s["Action"]} == services, key
        log_arns = [arn for s in statements for arn in s["Resource"] if ":logs:" in arn]
        assert log_arns == [
            f"arn:aws:logs:eu-west-1:123456789012:log-group:/aws/lambda/orderflow-test-{key}:*"
        ]
    consume = [s for s in policies["process-orders-role"] if "sqs:ReceiveMessage" in s["Action"]]
    assert consume[0]["Resource"] == [QUEUE_ARN]
    api_sqs = [s for s in policies["api-role"] if s["Action"][0].startswith("sqs:")]
    assert "sqs:ReceiveMessage" not in api_sqs[0]["Action"]


def test_only_the_queue_consumer_may_send_to_the_dlq_and_only_send(
    any_stack: Deployment,
) -> None:
    """`dead_letter` (processor/entrypoints/consumer.py) sends poison messages to the DLQ;
    the reconciler only reads its depth."""
    consumer = ("process-orders-role" if any_stack.config["processor"] == "lambda"
                else "worker-task-role")
    for role, statements in _policies(any_stack).items():
        expected = ([DLQ_SEND] if role == consumer
                    else [DLQ_DEPTH] if role == "reconcile-role" else [])
        assert _dlq_statements(statements) == expected, role


def test_outbox_relays_send_to_the_queue_topic_and_email_as_the_sender(
    any_stack: Deployment,
) -> None:
    """API (create: queue; cancel: SNS + SES), sweeper, reconciler (`--fix` re-sends) and
    consumer all relay the outbox."""
    policies = _policies(any_stack)
    relays = ["api-role", "sweep-outbox-role", "reconcile-role"] + (
        ["process-orders-role"] if any_stack.config["processor"] == "lambda"
        else ["worker-task-role"])
    topic = ARN.format(service="sns", resource="orderflow-test-notifications")
    for role in relays:
        statements = policies[role]
        assert {"Effect": "Allow", "Action": ["sqs:SendMessage", "sqs:GetQueueAttributes"],
                "Resource": [QUEUE_ARN]} in statements, role
        assert {"Effect": "Allow", "Action": ["sns:Publish"], "Resource": [topic]} in statements
        assert SES_SEND in statements, role
    ses_roles = {role for role, statements in policies.items()
                 if any(a.startswith("ses:") for s in statements for a in s["Action"])}
    assert ses_roles == set(relays)


def test_every_database_client_reads_the_secret_and_no_kms_grant_is_needed(
    any_stack: Deployment,
) -> None:
    (db,) = any_stack.of_type("aws:rds/instance:Instance")
    # No customer-managed key on the secret: a CMK would also need kms:Decrypt grants.
    assert "masterUserSecretKmsKeyId" not in db.inputs
    policies = _policies(any_stack)
    clients = [role for role in DB_CLIENT_ROLES if role in policies]
    assert len(clients) == 5  # api, sweeper, migrate, reconciler and this mode's consumer
    for role in clients:
        assert {"Effect": "Allow",
                "Action": ["secretsmanager:GetSecretValue", "secretsmanager:DescribeSecret"],
                "Resource": [DB_SECRET_ARN]} in policies[role], role
    assert not [a for ss in policies.values() for s in ss for a in s["Action"]
                if a.startswith("kms:")]


def test_fargate_task_role_consumes_only_its_queue(fargate_stack: Deployment) -> None:
    policies = _policies(fargate_stack)
    task = policies["worker-task-role"]
    sqs = [s for s in task if "sqs:ReceiveMessage" in s["Action"]]
    assert sqs[0]["Resource"] == [QUEUE_ARN]
    pulls = [s for s in policies["worker-execution-role"] if "ecr:BatchGetImage" in s["Action"]]
    assert pulls[0]["Resource"] == [
        "arn:aws:ecr:eu-west-1:123456789012:repository/orderflow-test-processor"
    ]
