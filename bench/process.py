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
    """PENDING -> COMPLETED by hand, making the state changes the service commits for one
    order with the simulator provider, in as many commits (the service's reads in between,
    the status, the order and its items, are left out), so that the ratio measures the
    service's overhead rather than work the baseline skips. Every commit waits for the WAL
    flush, as the service's do:

    1. PENDING -> PROCESSING: the status, its history row and notification record, and the
       confirmation of the order's queue message.
    2. The authorisation intent: the order marked as being charged and its payment row
       (AUTHORIZING), committed before the provider is called.
    3. The provider's answer (AUTHORIZED) with PROCESSING -> PAYMENT_CONFIRMED.
    4. The capture intent (CAPTURING), committed before the provider is called.
    5. The capture (CAPTURED) with PAYMENT_CONFIRMED -> FULFILLED.
    6. FULFILLED -> COMPLETED.
    7. The notification relay's lease on the order's five notification records.
    8-12. Each record marked sent (its event and its email) by itself, as the relay marks each
       the moment SES accepted its email: one autocommit statement each, no BEGIN or COMMIT.

    Each status move is the guarded update, the history row and the notification record.
    `packed` sends each transaction's statements as one string (one round trip per
    transaction); otherwise one execute per statement."""

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

    @staticmethod
    def _pay(
        order_id: UUID, source: str, target: str, changes: str, *values: Any
    ) -> tuple[str, Any]:
        """A guarded payment status change (migration 0004's columns); `values` fill the
        placeholders of `changes`."""
        return (
            f"UPDATE payments SET status = %s, {changes}, updated_at = now()"
            " WHERE order_id = %s AND status = %s",
            (target, *values, order_id, source),
        )

    def __call__(self, order_id: UUID) -> None:
        now = datetime.now(UTC)
        confirm = (
            # As the service: leaving PENDING confirms the order's queue message.
            "UPDATE outbox SET published_at = %s WHERE kind = 'order' AND order_id = %s"
            " AND status = 'PENDING' AND published_at IS NULL",
            (now, order_id),
        )
        self._transaction([*self._move(order_id, "PENDING", "PROCESSING"), confirm])
        self._transaction(
            [
                ("UPDATE orders SET payment_started_at = %s WHERE order_id = %s", (now, order_id)),
                (
                    "INSERT INTO payments (order_id, amount, outcome, created_at, updated_at,"
                    " provider, currency, amount_minor, status, authorize_key)"
                    " SELECT order_id, total_amount, 'PENDING', %s, %s, 'simulator', currency,"
                    " (total_amount * 100)::bigint, 'AUTHORIZING', %s FROM orders"
                    " WHERE order_id = %s",
                    (now, now, f"order-{order_id}-authorize", order_id),
                ),
            ]
        )
        authorized = self._pay(
            order_id,
            "AUTHORIZING",
            "AUTHORIZED",
            "provider_ref = %s, authorized_minor = amount_minor, outcome = 'CHARGED',"
            " attempts = attempts + 1",
            "pi_raw",
        )
        self._transaction([authorized, *self._move(order_id, "PROCESSING", "PAYMENT_CONFIRMED")])
        capture_key = f"order-{order_id}-capture"
        self._transaction(
            [self._pay(order_id, "AUTHORIZED", "CAPTURING", "capture_key = %s", capture_key)]
        )
        captured = self._pay(order_id, "CAPTURING", "CAPTURED", "captured_minor = authorized_minor")
        self._transaction([captured, *self._move(order_id, "PAYMENT_CONFIRMED", "FULFILLED")])
        self._transaction(self._move(order_id, "FULFILLED", "COMPLETED"))
        self._relay(order_id)

    def _relay(self, order_id: UUID) -> None:
        """The relay's writes: the lease (its own commit, before any send), then one
        autocommit mark per record, each after its email would have been accepted."""
        with self.conn.cursor() as cur:
            cur.execute(
                "UPDATE outbox SET attempts = attempts + 1,"
                " next_attempt_at = now() + make_interval(secs => 60)"
                " WHERE order_id = %s AND kind = 'notification' AND published_at IS NULL"
                " RETURNING id",
                (order_id,),
            )
            record_ids = sorted(row[0] for row in cur.fetchall())
        self.conn.commit()
        self.conn.autocommit = True
        try:
            with self.conn.cursor() as cur:
                for record_id in record_ids:
                    cur.execute(
                        "UPDATE outbox SET published_at = now(), next_attempt_at = NULL,"
                        " event_sent_at = coalesce(event_sent_at, now()) WHERE id = %s",
                        (record_id,),
                    )
        finally:
            self.conn.autocommit = False

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
        f" ({ms(plain_s)} with one execute per statement). Each step commits on its own by"
        " design (a crash resumes from the saved step; emails only follow commits), and so does"
        " each payment intent before its provider call, the relay's lease and each email's sent"
        " mark, so both sides pay twelve commits.",
        f"Statements per transaction {counted.per_transaction}: the status read, the four"
        " guarded steps with the authorise and capture intents before them, then the"
        " notification relay (the lease, then one sent mark per email).",
        f"With moto: {ms(full_s)} per order; its {notifications} notifications x (SES + SNS) ="
        f" {2 * notifications} emulator calls take about {ms(moto_extra_s)},"
        f" {pct(moto_extra_s / full_s)} of the time.",
    ]
    return section


def _next_of(fn: Callable[[UUID], Any], ids: Iterator[UUID]) -> Callable[[], Any]:
    return lambda: fn(next(ids))


def _counts(count: SqlCount) -> str:
    return f"{count.transactions} / {count.statements} / {count.round_trips}"
