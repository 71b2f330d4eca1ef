"""Order queue with its dead-letter queue, notification and operations topics, SES sender."""

from __future__ import annotations

from dataclasses import dataclass

import pulumi
import pulumi_aws as aws

from orderflow_infra.context import Context

DLQ_RETENTION_SECONDS = 14 * 24 * 3600  # the maximum: time to inspect and redrive


@dataclass(frozen=True)
class Messaging:
    """Queues, topics and the sender identity that functions and alarms are wired to."""

    queue: aws.sqs.Queue
    dlq: aws.sqs.Queue
    notification_topic: aws.sns.Topic
    operations_topic: aws.sns.Topic
    sender_identity: aws.ses.EmailIdentity


def create_messaging(ctx: Context) -> Messaging:
    """Create queues/topics; subscriptions are added only for emails that are configured."""
    cfg = ctx.cfg
    dlq = aws.sqs.Queue(
        "orders-dlq", name=ctx.name("orders-dlq"), sqs_managed_sse_enabled=True,
        message_retention_seconds=DLQ_RETENTION_SECONDS, opts=ctx.opts(),
    )
    queue = aws.sqs.Queue(
        "orders-queue",
        name=ctx.name("orders"),
        sqs_managed_sse_enabled=True,
        visibility_timeout_seconds=cfg.queue_visibility_timeout_seconds,
        receive_wait_time_seconds=20,
        redrive_policy=pulumi.Output.json_dumps({
            "deadLetterTargetArn": dlq.arn,
            "maxReceiveCount": cfg.dlq_max_receive_count,
        }),
        opts=ctx.opts(),
    )
    # Only the order queue may dead-letter into the DLQ.
    aws.sqs.RedriveAllowPolicy(
        "orders-dlq-redrive-allow", queue_url=dlq.url,
        redrive_allow_policy=pulumi.Output.json_dumps({
            "redrivePermission": "byQueue", "sourceQueueArns": [queue.arn],
        }),
        opts=ctx.opts(),
    )

    notification_topic = aws.sns.Topic(
        "notifications", name=ctx.name("notifications"), kms_master_key_id="alias/aws/sns",
        opts=ctx.opts(),
    )
    if cfg.notification_email:
        aws.sns.TopicSubscription(
            "notifications-email", topic=notification_topic.arn, protocol="email",
            endpoint=cfg.notification_email, opts=ctx.opts(),
        )
    # Not encrypted with aws/sns: CloudWatch alarms cannot publish to topics using that key.
    operations_topic = aws.sns.Topic("operations", name=ctx.name("operations"),
                                     opts=ctx.opts())
    if cfg.alarm_email:
        aws.sns.TopicSubscription(
            "operations-email", topic=operations_topic.arn, protocol="email",
            endpoint=cfg.alarm_email, opts=ctx.opts(),
        )
    sender_identity = aws.ses.EmailIdentity("sender", email=cfg.sender_email, opts=ctx.opts())
    return Messaging(queue=queue, dlq=dlq, notification_topic=notification_topic,
                     operations_topic=operations_topic, sender_identity=sender_identity)
