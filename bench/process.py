"""2. Full lifecycle of an order through `processing.process_order` vs raw SQL doing the same
state updates (each step committed on its own, as the service must)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from typing import Any
from uuid import UUID

import psycopg2

from bench.env import BenchEnv, configured, count_output, stub_aws
from bench.handlers import order_body
from bench.measure import (
    CountingConnection,
    SqlCount,
    count_sql,
    counting_connections,
    interleave,
    median,
    run_transaction,
)
from bench.report import Figure, Section, ms, pct, ratio_figure
from bench.sizes import Sizes
from processor import bootstrap
from processor.api.schemas import CreateOrderRequest
from processor.domain.model import Status
from processor.orders import service as order_service
from processor.processing import service as processing

TARGET_RATIO = 2.0
STEPS = ("PROCESSING", "PAYMENT_CONFIRMED", "FULFILLED", "COMPLETED")


class RawLifecycle:
    """PENDING -> COMPLETED by hand: per step one transaction that moves the status and writes
    the history row and the notification record (plus the payment row when charging, and the
    queue message's confirmation when leaving PENDING); at the
    end the notification records are marked sent (without waiting for the WAL flush, as the
    service's relay does). `packed` sends each transaction's statements as one string (one
    round trip per transaction)."""

    def __init__(self, database_url: str, packed: bool) -> None:
        self.conn = psycopg2.connect(database_url, connection_factory=CountingConnection)
        self.packed = packed

    def _transaction(self, statements: list[tuple[str, Any]]) -> None:
        run_transaction(self.conn, statements, self.packed)

    def _move(self, order_id: UUID, source: str, target: str) -> list[tuple[str, Any]]:
        now = datetime.now(UTC)
        return [
            (
                "UPDATE orders SET status = %s, updated_at = %s"
                " WHERE order_id = %s AND status = %s",
                (target, now, order_id, source),
            ),
            (
                "INSERT INTO order_status_history (order_id, status, changed_at)"
                " VALUES (%s, %s, %s)",
                (order_id, target, now),
            ),
            (
                "INSERT INTO outbox (kind, order_id, status, payload, created_at)"
                " VALUES ('notification', %s, %s, jsonb_build_object('order_id', %s::text,"
                " 'status', %s::text), %s)",
                (order_id, target, str(order_id), target, now),
            ),
        ]

    def __call__(self, order_id: UUID) -> None:
        now = datetime.now(UTC)
        confirm = (
            # As the service: leaving PENDING confirms the order's queue message.
            "UPDATE outbox SET published_at = %s WHERE kind = 'order' AND order_id = %s"
            " AND status = 'PENDING' AND published_at IS NULL",
            (now, order_id),
        )
        self._transaction([*self._move(order_id, "PENDING", "PROCESSING"), confirm])
        charge = [
            ("UPDATE orders SET payment_started_at = %s WHERE order_id = %s", (now, order_id)),
            (
                "INSERT INTO payments (order_id, amount, outcome, provider_ref, attempts,"
                " created_at, updated_at) SELECT order_id, total_amount, 'CHARGED', %s, 1, %s,"
                " %s FROM orders WHERE order_id = %s",
                ("ch_raw", now, now, order_id),
            ),
        ]
        self._transaction(charge + self._move(order_id, "PROCESSING", "PAYMENT_CONFIRMED"))
        self._transaction(self._move(order_id, "PAYMENT_CONFIRMED", "FULFILLED"))
        self._transaction(self._move(order_id, "FULFILLED", "COMPLETED"))
        self._transaction(
            [
                # As the service's relay: a lost mark only means a resend, so no WAL flush wait.
                ("SET LOCAL synchronous_commit TO OFF", None),
                (
                    "UPDATE outbox SET published_at = now(), attempts = attempts + 1"
                    " WHERE order_id = %s AND kind = 'notification' AND published_at IS NULL",
                    (order_id,),
                ),
            ]
        )

    def close(self) -> None:
        self.conn.close()


def _new_orders(n: int) -> list[UUID]:
    request = CreateOrderRequest.model_validate(order_body(3))
    return [UUID(order_service.create_order(request)[0]["order_id"]) for _ in range(n)]


def _process(order_id: UUID) -> None:
    status = processing.process_order(order_id)
    if status != Status.COMPLETED:
        raise RuntimeError(f"order {order_id} ended {status}")


def _race(contenders: dict[str, Callable[[UUID], Any]], orders: int) -> dict[str, list[float]]:
    """Seconds per lifecycle of each contender, each on its own fresh PENDING orders, taking
    turns order by order."""
    queues = {name: iter(_new_orders(orders + 3)) for name in contenders}
    return interleave({name: _next_of(fn, queues[name]) for name, fn in contenders.items()}, orders)


def run(env: BenchEnv, sizes: Sizes) -> Section:
    section = Section("process", "2. Process order")
    env.truncate()
    bootstrap.set_payment_provider(None)
    floor, plain = RawLifecycle(env.database_url, True), RawLifecycle(env.database_url, False)
    try:
        with stub_aws() as stub, counting_connections():
            timed = _race(
                {"floor": floor, "plain": plain, "subject": _process}, sizes.process_orders
            )
            (order_id,) = _new_orders(1)
            before = stub.calls.copy()
            with count_sql() as counted, count_output() as output:
                _process(order_id)
            aws_calls = dict(stub.calls - before)
            (order_id,) = _new_orders(1)
            with count_sql() as raw_counted:
                plain(order_id)
        # Notifications to moto SES + SNS (orders are not queued: processing is called here).
        with configured(ORDER_QUEUE_URL=None):
            moto = _race({"floor": floor, "subject": _process}, sizes.process_moto_orders)
    finally:
        floor.close()
        plain.close()

    subject_s, floor_s, plain_s = (median(timed[k]) for k in ("subject", "floor", "plain"))
    section.figures.append(
        ratio_figure(
            "process_order, DB only (AWS stubbed) vs raw SQL, one round trip per transaction",
            subject_s,
            "raw",
            floor_s,
            TARGET_RATIO,
        )
    )
    section.figures.append(
        ratio_figure(
            "process_order, DB only (AWS stubbed) vs raw SQL, one execute per statement",
            subject_s,
            "raw",
            plain_s,
            TARGET_RATIO,
        )
    )
    full_s, moto_floor_s = median(moto["subject"]), median(moto["floor"])
    moto_extra_s = (full_s / moto_floor_s - subject_s / floor_s) * moto_floor_s
    section.figures.append(
        ratio_figure(
            "process_order, notifications to moto SES + SNS", full_s, "raw", moto_floor_s, None
        )
    )
    section.figures.append(
        Figure(
            name="Per order: transactions / statements / round trips",
            result=_counts(counted),
            baseline=f"raw: {_counts(raw_counted)}",
        )
    )
    notifications = len(STEPS) + 1
    section.data = {
        "process_seconds": subject_s,
        "db_seconds": floor_s,
        "transactions": counted.transactions,
        "statements": counted.statements,
        "round_trips": counted.round_trips,
        "aws_calls": aws_calls,
        "log_bytes": output.bytes,
    }
    section.findings += [
        f"DB-only lifecycle {ms(subject_s)} vs {ms(floor_s)} for the same writes by hand"
        f" ({ms(plain_s)} with one execute per statement). Each of the four steps commits on"
        " its own by design (a crash resumes from the saved step; emails only follow commits),"
        " so both sides pay four durable commits.",
        f"Statements per transaction {counted.per_transaction}: the status read, the four"
        " guarded steps (charging adds payment bookkeeping), then the notification relay.",
        f"With moto: {ms(full_s)} per order; its {notifications} notifications x (SES + SNS) ="
        f" {2 * notifications} emulator calls take about {ms(moto_extra_s)},"
        f" {pct(moto_extra_s / full_s)} of the time.",
    ]
    return section


def _next_of(fn: Callable[[UUID], Any], ids: Iterator[UUID]) -> Callable[[], Any]:
    return lambda: fn(next(ids))


def _counts(count: SqlCount) -> str:
    return f"{count.transactions} / {count.statements} / {count.round_trips}"
