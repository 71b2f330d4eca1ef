"""Order queue with its dead-letter queue, notification and operations topics, SES sender."""

from __future__ import annotations

import pulumi
import pulumi_aws as aws

from orderflow_infra.context import Context

DLQ_RETENTION_SECONDS = 14 * 24 * 3600  # the maximum: time to inspect and redrive


class Messaging(pulumi.ComponentResource):
    """The diagram's queues and topics: the order queue with its DLQ, the notification and
    operations topics, and the SES sender identity that functions and alarms are wired to.

    Subscriptions are added only for emails that are configured.
    """

    queue: aws.sqs.Queue
    dlq: aws.sqs.Queue
    notification_topic: aws.sns.Topic
    operations_topic: aws.sns.Topic
    sender_identity: aws.ses.EmailIdentity

    def __init__(self, name: str, ctx: Context,
                 opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("orderflow:messaging:Messaging", name, {}, opts)
        ctx = ctx.within(self)
        self._queues(ctx)
        self._topics(ctx)
        # Kept on destroy: an identity is per account and region, not per stack (creating one
        # that exists succeeds), so another stack with the same sender may be using it.
        self.sender_identity = aws.ses.EmailIdentity("sender", email=ctx.cfg.sender_email,
                                                     opts=ctx.opts(retain_on_delete=True))
        self.register_outputs({
            "queue_url": self.queue.url, "dlq_url": self.dlq.url,
            "notification_topic_arn": self.notification_topic.arn,
            "operations_topic_arn": self.operations_topic.arn,
        })

    def _queues(self, ctx: Context) -> None:
        cfg = ctx.cfg
        self.dlq = aws.sqs.Queue(
            "orders-dlq", name=ctx.name("orders-dlq"), sqs_managed_sse_enabled=True,
            message_retention_seconds=DLQ_RETENTION_SECONDS, opts=ctx.opts(),
        )
        self.queue = aws.sqs.Queue(
            "orders-queue",
            name=ctx.name("orders"),
            sqs_managed_sse_enabled=True,
            visibility_timeout_seconds=cfg.queue_visibility_timeout_seconds,
            receive_wait_time_seconds=20,
            redrive_policy=pulumi.Output.json_dumps({
                "deadLetterTargetArn": self.dlq.arn,
                "maxReceiveCount": cfg.dlq_max_receive_count,
            }),
            opts=ctx.opts(),
        )
        # Only the order queue may dead-letter into the DLQ.
        aws.sqs.RedriveAllowPolicy(
            "orders-dlq-redrive-allow", queue_url=self.dlq.url,
            redrive_allow_policy=pulumi.Output.json_dumps({
                "redrivePermission": "byQueue", "sourceQueueArns": [self.queue.arn],
            }),
            opts=ctx.opts(),
        )

    def _topics(self, ctx: Context) -> None:
        cfg = ctx.cfg
        self.notification_topic = aws.sns.Topic(
            "notifications", name=ctx.name("notifications"),
            kms_master_key_id="alias/aws/sns", opts=ctx.opts(),
        )
        if cfg.notification_email:
            aws.sns.TopicSubscription(
                "notifications-email", topic=self.notification_topic.arn, protocol="email",
                endpoint=cfg.notification_email, opts=ctx.opts(),
            )
        # Not encrypted with aws/sns: CloudWatch alarms cannot publish to topics using that
        # key.
        self.operations_topic = aws.sns.Topic("operations", name=ctx.name("operations"),
                                              opts=ctx.opts())
        if cfg.alarm_email:
            aws.sns.TopicSubscription(
                "operations-email", topic=self.operations_topic.arn, protocol="email",
                endpoint=cfg.alarm_email, opts=ctx.opts(),
            )
