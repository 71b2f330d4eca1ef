"""The app's CloudWatch metrics, declared once.

The emitter (`processor.observability.emit_metric` takes a `Metric`, never a bare name), the
dashboard and alarms (pulumi/orderflow_infra/monitoring.py) and the tests all import these, so
a renamed or added metric cannot leave a graph or an alarm watching a name nobody writes.
Pure declarations (the domain's statuses only): the Pulumi program imports this module too.
"""

from __future__ import annotations

from dataclasses import dataclass

from processor.domain.model import FINAL_STATUSES, Status
from processor.domain.reconciliation import FINDING_KINDS, REPAIRABLE, EventOutcome


@dataclass(frozen=True)
class Metric:
    """One EMF metric: its name and unit, and how operators watch it.

    CloudWatch keys a metric by its exact dimension set, so a metric emitted with a dimension
    (besides `service`) is graphed once per value in `values`. `alarmed`: an alarm watches it
    (besides its dashboard graph); tests/infra/test_monitoring.py holds the stack to both.
    """

    name: str
    unit: str = "Count"
    dimension: str | None = None
    values: tuple[str, ...] = ()
    alarmed: bool = False

    def dimension_sets(self) -> list[dict[str, str]]:
        """Every dimension set (besides `service`) the app emits this metric with."""
        if self.dimension is None:
            return [{}]
        return [{self.dimension: value} for value in self.values]


FINAL = tuple(s.value for s in Status if s in FINAL_STATUSES)
STEPS = tuple(s.value for s in Status if s not in FINAL_STATUSES)

ORDERS_CREATED = Metric("OrdersCreated")
ORDERS_PROCESSED = Metric("OrdersProcessed", dimension="final_status", values=FINAL)
PAYMENT_DECLINES = Metric("PaymentDeclines")
STEP_LATENCY = Metric("StepLatency", "Milliseconds", dimension="step", values=STEPS)
PROCESSING_FAILURES = Metric("ProcessingFailures", alarmed=True)
DEAD_LETTERED = Metric("DeadLettered")
OUTBOX_UNSENT = Metric("OutboxUnsent")
OUTBOX_LAG = Metric("OutboxLag", "Seconds", alarmed=True)
NOTIFICATIONS_GIVEN_UP = Metric("NotificationsGivenUp", alarmed=True)
# The SQS batch calls whose refused entries the app counts after one retry.
SQS_BATCH_ENTRY_FAILURES = Metric(
    "SqsBatchEntryFailures",
    dimension="action",
    values=("delete_message_batch", "change_message_visibility_batch"),
)
# Provider webhooks: what each accepted event did; deliveries refused for their signature.
WEBHOOK_EVENTS = Metric(
    "WebhookEvents", dimension="outcome", values=tuple(o.value for o in EventOutcome)
)
WEBHOOK_REJECTED = Metric("WebhookRejected")
# The reconciler, once per run: findings of each kind (0 for the kinds it found none of, so
# graphs and the alarm fall back), their total (the alarm: one metric, not one per kind), and
# the repairs `--fix` made.
RECONCILER_FINDINGS = Metric("ReconcilerFindings", dimension="kind", values=tuple(FINDING_KINDS))
RECONCILER_FINDINGS_TOTAL = Metric("ReconcilerFindingsTotal", alarmed=True)
RECONCILER_REPAIRS = Metric("ReconcilerRepairs", dimension="kind", values=tuple(sorted(REPAIRABLE)))

CATALOGUE: tuple[Metric, ...] = (
    ORDERS_CREATED,
    ORDERS_PROCESSED,
    PAYMENT_DECLINES,
    STEP_LATENCY,
    PROCESSING_FAILURES,
    DEAD_LETTERED,
    OUTBOX_UNSENT,
    OUTBOX_LAG,
    NOTIFICATIONS_GIVEN_UP,
    SQS_BATCH_ENTRY_FAILURES,
    WEBHOOK_EVENTS,
    WEBHOOK_REJECTED,
    RECONCILER_FINDINGS,
    RECONCILER_FINDINGS_TOTAL,
    RECONCILER_REPAIRS,
)
