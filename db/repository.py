"""All SQL of the service, as small parameterized statements (no string-built values).

Hot paths are single statements: creating an order writes the order, its items, the first
history row and both outbox records in one round trip; a lifecycle step moves the status with
a guard on the expected current status and writes its history and notification records in the
same statement, so a lost race or a redelivery changes nothing.
"""

from __future__ import annotations

import functools
import os
import re
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any
from uuid import UUID

from psycopg2.extensions import cursor as Cursor
from psycopg2.extras import Json

from db.connection import prepared_statements

_NAMED_PARAMETER = re.compile(r"%\((\w+)\)s")


def _execute_prepared(cur: Cursor, name: str, sql: str, params: dict[str, Any]) -> None:
    """Run a hot statement as a server-side prepared statement: planning a statement this
    size costs about as much as executing it, and the plan is the same every time.

    Prepared once per connection. Off with DB_PREPARED_STATEMENTS=off, which the stack sets
    when RDS Proxy is on (a PREPARE pins the client to one database connection there).
    """
    if os.environ.get("DB_PREPARED_STATEMENTS", "on") == "off":
        cur.execute(sql, params)
        return
    prepare, execute = _prepared_forms(name, sql)
    prepared = prepared_statements()
    if name not in prepared:
        cur.execute(prepare)
        prepared.add(name)
    cur.execute(execute, params)


@functools.lru_cache(maxsize=16)
def _prepared_forms(name: str, sql: str) -> tuple[str, str]:
    """`PREPARE` (named parameters turned positional) and `EXECUTE` texts, worked out once
    per statement rather than on every request."""
    order = list(dict.fromkeys(_NAMED_PARAMETER.findall(sql)))
    positional = _NAMED_PARAMETER.sub(lambda m: f"${order.index(m.group(1)) + 1}", sql)
    arguments = ", ".join(f"%({parameter})s" for parameter in order)
    return f"PREPARE {name} AS {positional}", f"EXECUTE {name} ({arguments})"


# A CTE for `transition`: the queue message of an order leaving PENDING has arrived.
CONFIRM_ORDER_MESSAGE = """, confirmed_message AS (
                UPDATE outbox SET published_at = %(now)s
                WHERE id = (SELECT id FROM outbox
                            WHERE kind = 'order' AND order_id = %(order_id)s
                              AND status = 'PENDING' AND published_at IS NULL
                              AND EXISTS (SELECT 1 FROM moved)
                            FOR UPDATE SKIP LOCKED)
            )"""

ORDER_COLUMNS = (
    "order_id, customer_email, customer_name, total_amount, status, created_at, updated_at,"
    " currency, payment_method"
)


@dataclass(frozen=True)
class OrderRow:
    order_id: UUID
    customer_email: str
    customer_name: str
    total_amount: Decimal
    status: str
    created_at: datetime
    updated_at: datetime
    currency: str = "usd"
    payment_method: str | None = None


@dataclass(frozen=True)
class ItemRow:
    product_name: str
    quantity: int
    unit_price: Decimal


@dataclass(frozen=True)
class HistoryRow:
    status: str
    reason: str | None
    changed_at: datetime


@dataclass(frozen=True)
class IdempotencyRecord:
    request_hash: str
    response_status: int
    response_body: str


@dataclass(frozen=True)
class IdempotencyClaim:
    """An Idempotency-Key with the request's hash and the response to replay for it."""

    key: str
    request_hash: str
    response_status: int
    response_body: str


@dataclass(frozen=True)
class OutboxRecord:
    id: int
    kind: str
    order_id: UUID
    status: str
    payload: dict[str, Any]
    attempts: int


PAYMENT_COLUMNS = (
    "order_id, status, provider, currency, amount_minor, authorized_minor, captured_minor,"
    " refunded_minor, provider_ref, decline_reason, failure_message, attempts"
)


@dataclass(frozen=True)
class PaymentRow:
    """An order's payment; amounts in the currency's minor units. `status` is the provider
    side's lifecycle (AUTHORIZING ... VOIDED, see migration 0004)."""

    order_id: UUID
    status: str
    provider: str
    currency: str
    amount_minor: int
    authorized_minor: int
    captured_minor: int
    refunded_minor: int
    provider_ref: str | None
    decline_reason: str | None
    failure_message: str | None
    attempts: int


@dataclass(frozen=True)
class PaymentStart:
    """The authorisation intent `start_payment` commits before the provider is called."""

    order_id: UUID
    provider: str
    amount_minor: int
    authorize_key: str
    now: datetime


@dataclass(frozen=True)
class PaymentMove:
    """A guarded change of a payment's status (written only from one of `expected`, and with
    `order_statuses` only while the order is in one of them), with what the provider answered.
    `outcome` keeps the pre-0004 column current until a migration contracts it."""

    order_id: UUID
    expected: list[str]
    target: str
    order_statuses: list[str] | None = None
    provider_ref: str | None = None
    authorized_minor: int | None = None
    captured_minor: int | None = None
    decline_reason: str | None = None
    failure_message: str | None = None
    capture_key: str | None = None
    void_key: str | None = None
    outcome: str | None = None
    add_attempts: int = 0


REFUND_COLUMNS = (
    "refund_id, order_id, amount_minor, currency, reason, status, provider_key, provider_ref,"
    " failure_message, request_key, request_hash, created_at, updated_at"
)


@dataclass(frozen=True)
class RefundRow:
    refund_id: UUID
    order_id: UUID
    amount_minor: int
    currency: str
    reason: str | None
    status: str
    provider_key: str
    provider_ref: str | None
    failure_message: str | None
    request_key: str | None
    request_hash: str | None
    created_at: datetime
    updated_at: datetime


@dataclass(frozen=True)
class NewOrder:
    """What `OrderRepository.add` writes in its one statement; one object, so the real
    repository and the test fake share this definition instead of each restating the list."""

    order: OrderRow
    items: list[ItemRow]
    queue_message: dict[str, Any]
    idempotency: IdempotencyClaim | None = None

    def queue_record(self, outbox_id: int) -> OutboxRecord:
        """The queue message's outbox record as `add` writes it (returned as `outbox_id`), for
        the create path to send at once without reading it back."""
        order = self.order
        return OutboxRecord(outbox_id, "order", order.order_id, order.status, self.queue_message, 0)


@dataclass(frozen=True)
class ListQuery:
    """A page of `OrderRepository.list`: the filters and `after` (a keyset cursor position)
    narrow the rows, `offset` and `limit` cut the page; one object for the same reason as
    `NewOrder`."""

    limit: int
    offset: int = 0
    after: tuple[datetime, UUID] | None = None
    status: str | None = None
    customer_email: str | None = None


@dataclass(frozen=True)
class Transition:
    """A guarded status change for `OrderRepository.transition`: written only if the order is
    in one of the `expected` statuses (and, with `require_no_payment`, not yet being charged)."""

    order_id: UUID
    expected: list[str]
    target: str
    now: datetime
    reason: str | None = None
    require_no_payment: bool = False


class OrderRepository:
    def __init__(self, cursor: Cursor) -> None:
        self._cur = cursor

    def add(self, new: NewOrder) -> int | None:
        """Insert order, items, first history row and both outbox records in ONE statement,
        atomic on its own (no BEGIN/COMMIT round trips); returns the queue message's outbox id.

        With `idempotency`, the key is claimed in the same statement and everything else is
        written only if the claim succeeded; None means the key was already taken. A
        concurrent request with the same key blocks on the key's unique index until the
        first one commits, then finds it taken: one key, one order.
        """
        order, items, idempotency = new.order, new.items, new.idempotency
        key = idempotency.key if idempotency else None
        _execute_prepared(
            self._cur,
            "orderflow_create_order",
            """
            WITH claimed_key AS (
                INSERT INTO idempotency_keys
                    (idempotency_key, request_hash, order_id, response_status, response_body)
                SELECT %(key)s, %(request_hash)s, %(order_id)s, %(response_status)s,
                       %(response_body)s
                WHERE %(key)s::text IS NOT NULL
                ON CONFLICT (idempotency_key) DO NOTHING
                RETURNING 1
            ), go AS (
                SELECT 1 WHERE %(key)s::text IS NULL OR EXISTS (SELECT 1 FROM claimed_key)
            ), new_order AS (
                INSERT INTO orders (order_id, customer_email, customer_name, total_amount,
                                    status, created_at, updated_at, currency, payment_method)
                SELECT %(order_id)s, %(email)s, %(name)s, %(total)s, %(status)s,
                       %(now)s, %(now)s, %(currency)s, %(payment_method)s
                FROM go
            ), new_items AS (
                INSERT INTO order_items (order_id, line_no, product_name, quantity, unit_price)
                SELECT %(order_id)s, t.line_no, t.product_name, t.quantity, t.unit_price
                FROM go, unnest(%(line_nos)s::int[], %(names)s::text[], %(quantities)s::int[],
                                %(prices)s::numeric[])
                         AS t(line_no, product_name, quantity, unit_price)
            ), first_history AS (
                INSERT INTO order_status_history (order_id, status, changed_at)
                SELECT %(order_id)s, %(status)s, %(now)s FROM go
            ), new_outbox AS (
                INSERT INTO outbox (kind, order_id, status, payload, created_at)
                SELECT v.kind, %(order_id)s, %(status)s, v.payload, %(now)s
                FROM go, (VALUES ('order', %(message)s::jsonb),
                                 ('notification', %(notification)s::jsonb)) AS v(kind, payload)
                RETURNING id, kind
            )
            SELECT id FROM new_outbox WHERE kind = 'order'
            """,
            {
                "key": key,
                "request_hash": idempotency.request_hash if idempotency else None,
                "response_status": idempotency.response_status if idempotency else None,
                "response_body": idempotency.response_body if idempotency else None,
                "order_id": order.order_id,
                "email": order.customer_email,
                "name": order.customer_name,
                "total": order.total_amount,
                "status": order.status,
                "currency": order.currency,
                "payment_method": order.payment_method,
                "now": order.created_at,
                "line_nos": list(range(1, len(items) + 1)),
                "names": [item.product_name for item in items],
                "quantities": [item.quantity for item in items],
                "prices": [item.unit_price for item in items],
                "message": Json(new.queue_message),
                "notification": Json({"order_id": str(order.order_id), "status": order.status}),
            },
        )
        row = self._cur.fetchone()
        return row[0] if row else None

    def idempotency_record(self, key: str) -> IdempotencyRecord | None:
        self._cur.execute(
            "SELECT request_hash, response_status, response_body FROM idempotency_keys"
            " WHERE idempotency_key = %s",
            (key,),
        )
        row = self._cur.fetchone()
        return IdempotencyRecord(*row) if row else None

    def get(self, order_id: UUID) -> OrderRow | None:
        self._cur.execute(f"SELECT {ORDER_COLUMNS} FROM orders WHERE order_id = %s", (order_id,))
        row = self._cur.fetchone()
        return OrderRow(*row) if row else None

    def get_status(self, order_id: UUID) -> str | None:
        self._cur.execute("SELECT status FROM orders WHERE order_id = %s", (order_id,))
        row = self._cur.fetchone()
        return row[0] if row else None

    def items_for(self, order_ids: list[UUID]) -> dict[UUID, list[ItemRow]]:
        self._cur.execute(
            "SELECT order_id, product_name, quantity, unit_price FROM order_items"
            " WHERE order_id = ANY(%s::uuid[]) ORDER BY order_id, line_no",
            (order_ids,),
        )
        found: dict[UUID, list[ItemRow]] = {order_id: [] for order_id in order_ids}
        for order_id, name, quantity, price in self._cur.fetchall():
            found[order_id].append(ItemRow(name, quantity, price))
        return found

    def history(self, order_id: UUID) -> list[HistoryRow]:
        """Status changes, newest first (ids follow commit order of the sequential steps)."""
        self._cur.execute(
            "SELECT status, reason, changed_at FROM order_status_history"
            " WHERE order_id = %s ORDER BY id DESC",
            (order_id,),
        )
        return [HistoryRow(*row) for row in self._cur.fetchall()]

    def list(self, query: ListQuery) -> list[OrderRow]:
        """Newest first, `order_id` breaking ties."""
        where: list[str] = []
        params: list[Any] = []
        if query.status is not None:
            where.append("status = %s")
            params.append(query.status)
        if query.customer_email is not None:
            where.append("customer_email = %s")
            params.append(query.customer_email)
        if query.after is not None:
            where.append("(created_at, order_id) < (%s, %s)")
            params.extend(query.after)
        sql = f"SELECT {ORDER_COLUMNS} FROM orders"
        if where:
            sql += " WHERE " + " AND ".join(where)
        sql += " ORDER BY created_at DESC, order_id DESC LIMIT %s OFFSET %s"
        params.extend([query.limit, query.offset])
        self._cur.execute(sql, params)
        return [OrderRow(*row) for row in self._cur.fetchall()]

    def transition(self, step: Transition) -> int | None:
        """Guarded status change with its history row and notification record.

        Returns the notification outbox id, or None when the order was not in an `expected`
        status (someone else moved it first): nothing is written then.

        Leaving PENDING also marks the order's queue message as delivered: the create path
        sends it without recording the send (a round trip saved per order), and an order that
        has left PENDING needs no further copy from the sweeper. SKIP LOCKED: a relay sending
        that record right now marks it itself, and processing never waits for its network call.
        """
        guard = " AND payment_started_at IS NULL" if step.require_no_payment else ""
        confirm = CONFIRM_ORDER_MESSAGE if "PENDING" in step.expected else ""
        self._cur.execute(
            f"""
            WITH moved AS (
                UPDATE orders SET status = %(target)s, updated_at = %(now)s
                WHERE order_id = %(order_id)s AND status = ANY(%(expected)s){guard}
                RETURNING order_id, status
            ), new_history AS (
                INSERT INTO order_status_history (order_id, status, reason, changed_at)
                SELECT order_id, status, %(reason)s, %(now)s FROM moved
            ){confirm}
            INSERT INTO outbox (kind, order_id, status, payload, created_at)
            SELECT 'notification', order_id, status,
                   jsonb_build_object('order_id', order_id, 'status', status,
                                      'reason', %(reason)s::text),
                   %(now)s
            FROM moved
            RETURNING id
            """,
            {
                "order_id": step.order_id,
                "expected": step.expected,
                "target": step.target,
                "now": step.now,
                "reason": step.reason,
            },
        )
        row = self._cur.fetchone()
        return row[0] if row else None

    def start_payment(self, start: PaymentStart) -> PaymentRow | None:
        """Commit the intent to authorise: mark the order as being charged (which closes the
        cancel window of PROCESSING) and create its payment row, or return the existing one.
        None if the order is no longer PROCESSING, or if a concurrent start has not committed
        yet (the caller reads again).

        The order row is written only by the first start: every later step locks the payment
        row before the order row, and a start that locked the order row before waiting on the
        payment row could deadlock with them."""
        self._cur.execute(
            f"""
            WITH started AS (
                UPDATE orders SET payment_started_at = %(now)s
                WHERE order_id = %(order_id)s AND status = 'PROCESSING'
                  AND payment_started_at IS NULL
                RETURNING order_id, total_amount, currency
            ), new_payment AS (
                INSERT INTO payments (order_id, amount, outcome, created_at, updated_at,
                                      provider, currency, amount_minor, status, authorize_key)
                SELECT order_id, total_amount, 'PENDING', %(now)s, %(now)s, %(provider)s,
                       currency, %(amount_minor)s, 'AUTHORIZING', %(key)s
                FROM started
                ON CONFLICT (order_id) DO NOTHING
                RETURNING {PAYMENT_COLUMNS}
            )
            SELECT {PAYMENT_COLUMNS} FROM new_payment
            UNION ALL
            SELECT {PAYMENT_COLUMNS} FROM payments p
            WHERE p.order_id = %(order_id)s AND NOT EXISTS (SELECT 1 FROM started)
              AND EXISTS (SELECT 1 FROM orders o
                          WHERE o.order_id = p.order_id AND o.status = 'PROCESSING')
            """,
            {
                "order_id": start.order_id,
                "now": start.now,
                "provider": start.provider,
                "amount_minor": start.amount_minor,
                "key": start.authorize_key,
            },
        )
        row = self._cur.fetchone()
        return PaymentRow(*row) if row else None


class PaymentRepository:
    def __init__(self, cursor: Cursor) -> None:
        self._cur = cursor

    def get(self, order_id: UUID, for_update: bool = False) -> PaymentRow | None:
        """`for_update` locks the row until the transaction ends (a refund being created
        checks the refundable amount under it)."""
        lock = " FOR UPDATE" if for_update else ""
        self._cur.execute(
            f"SELECT {PAYMENT_COLUMNS} FROM payments WHERE order_id = %s{lock}", (order_id,)
        )
        row = self._cur.fetchone()
        return PaymentRow(*row) if row else None

    def record_attempts(self, order_id: UUID, attempts: int) -> None:
        self._cur.execute(
            "UPDATE payments SET attempts = attempts + %s, updated_at = now() WHERE order_id = %s",
            (attempts, order_id),
        )

    def move(self, step: PaymentMove) -> PaymentRow | None:
        """Apply `step` if the payment (and the order) are where it expects; None otherwise.
        The payment row's lock serialises racing moves (a capture and a void of one
        authorisation): the second finds the status changed and writes nothing."""
        order_guard = (
            " AND EXISTS (SELECT 1 FROM orders o WHERE o.order_id = payments.order_id"
            " AND o.status = ANY(%(order_statuses)s))"
            if step.order_statuses is not None
            else ""
        )
        self._cur.execute(
            f"""
            UPDATE payments SET
                status = %(target)s,
                provider_ref = coalesce(%(provider_ref)s, provider_ref),
                authorized_minor = coalesce(%(authorized_minor)s, authorized_minor),
                captured_minor = coalesce(%(captured_minor)s, captured_minor),
                decline_reason = coalesce(%(decline_reason)s, decline_reason),
                failure_message = coalesce(%(failure_message)s, failure_message),
                capture_key = coalesce(%(capture_key)s, capture_key),
                void_key = coalesce(%(void_key)s, void_key),
                outcome = coalesce(%(outcome)s, outcome),
                attempts = attempts + %(add_attempts)s,
                updated_at = now()
            WHERE order_id = %(order_id)s AND status = ANY(%(expected)s){order_guard}
            RETURNING {PAYMENT_COLUMNS}
            """,
            {
                "order_id": step.order_id,
                "expected": step.expected,
                "target": step.target,
                "order_statuses": step.order_statuses,
                "provider_ref": step.provider_ref,
                "authorized_minor": step.authorized_minor,
                "captured_minor": step.captured_minor,
                "decline_reason": step.decline_reason,
                "failure_message": step.failure_message,
                "capture_key": step.capture_key,
                "void_key": step.void_key,
                "outcome": step.outcome,
                "add_attempts": step.add_attempts,
            },
        )
        row = self._cur.fetchone()
        return PaymentRow(*row) if row else None

    def add_refund(self, refund: RefundRow) -> bool:
        """Insert the refund; False if its `request_key` is taken (a concurrent request with
        the same Idempotency-Key committed first: the caller replays that one)."""
        self._cur.execute(
            f"INSERT INTO refunds ({REFUND_COLUMNS}) VALUES"
            " (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s)"
            " ON CONFLICT (request_key) DO NOTHING RETURNING 1",
            (
                refund.refund_id,
                refund.order_id,
                refund.amount_minor,
                refund.currency,
                refund.reason,
                refund.status,
                refund.provider_key,
                refund.provider_ref,
                refund.failure_message,
                refund.request_key,
                refund.request_hash,
                refund.created_at,
                refund.updated_at,
            ),
        )
        return self._cur.fetchone() is not None

    def refunds(self, order_id: UUID) -> list[RefundRow]:
        """Oldest first."""
        self._cur.execute(
            f"SELECT {REFUND_COLUMNS} FROM refunds WHERE order_id = %s"
            " ORDER BY created_at, refund_id",
            (order_id,),
        )
        return [RefundRow(*row) for row in self._cur.fetchall()]

    def refund_by_request_key(self, key: str) -> RefundRow | None:
        self._cur.execute(f"SELECT {REFUND_COLUMNS} FROM refunds WHERE request_key = %s", (key,))
        row = self._cur.fetchone()
        return RefundRow(*row) if row else None

    def finish_refund(
        self, refund_id: UUID, succeeded: bool, provider_ref: str | None, message: str | None
    ) -> PaymentRow | None:
        """Record a pending refund's answer and, if it succeeded, add it to the payment's
        refunded total, in one statement; None if it was no longer pending (recorded by a
        concurrent retry), so it is never counted twice."""
        self._cur.execute(
            f"""
            WITH done AS (
                UPDATE refunds SET status = %(status)s, provider_ref = %(ref)s,
                                   failure_message = %(message)s, updated_at = now()
                WHERE refund_id = %(refund_id)s AND status = 'PENDING'
                RETURNING order_id, amount_minor, status
            )
            UPDATE payments p SET
                refunded_minor = p.refunded_minor
                    + CASE WHEN done.status = 'SUCCEEDED' THEN done.amount_minor ELSE 0 END,
                updated_at = now()
            FROM done WHERE p.order_id = done.order_id
            RETURNING {", ".join("p." + c.strip() for c in PAYMENT_COLUMNS.split(","))}
            """,
            {
                "status": "SUCCEEDED" if succeeded else "FAILED",
                "ref": provider_ref,
                "message": message,
                "refund_id": refund_id,
            },
        )
        row = self._cur.fetchone()
        return PaymentRow(*row) if row else None


class OutboxRepository:
    def __init__(self, cursor: Cursor) -> None:
        self._cur = cursor

    def claim_for_sending(
        self,
        limit: int,
        older_than_seconds: float = 0,
        ids: list[int] | None = None,
        order_id: UUID | None = None,
        kind: str | None = None,
        unconfirmed_after_seconds: float | None = None,
    ) -> list[OutboxRecord]:
        """Mark unsent records as sent, in one statement, and keep them locked until the
        transaction ends: a concurrent relay skips them instead of sending twice.

        With `unconfirmed_after_seconds`, a queue message the create path sent without error
        (never attempted since, so `attempts` is 0) is taken only once it is that old: until
        the processor confirms it, it is most likely waiting in the queue, not lost.

        The caller sends, takes the mark back with `mark_failed` where a send failed, and
        commits; a rollback (crash, exception) leaves every record unsent. That commit need
        not wait for the WAL flush: a mark lost in a server crash only means the record is
        sent again, which consumers tolerate anyway (at least once), so the relay transaction
        runs with synchronous_commit off and spares the request path a disk flush.
        """
        where = "published_at IS NULL"
        params: list[Any] = []
        if older_than_seconds:
            where += " AND created_at <= now() - make_interval(secs => %s)"
            params.append(older_than_seconds)
        if ids is not None:
            where += " AND id = ANY(%s::bigint[])"
            params.append(ids)
        if order_id is not None:
            where += " AND order_id = %s"
            params.append(order_id)
        if kind is not None:
            where += " AND kind = %s"
            params.append(kind)
        if unconfirmed_after_seconds is not None:
            where += (
                " AND (kind <> 'order' OR attempts > 0"
                " OR created_at <= now() - make_interval(secs => %s))"
            )
            params.append(unconfirmed_after_seconds)
        params.append(limit)
        self._cur.execute(
            "SET LOCAL synchronous_commit TO OFF;"
            " WITH claimed AS ("
            "  UPDATE outbox SET published_at = now(), attempts = attempts + 1"
            "  WHERE id IN (SELECT id FROM outbox"
            f"   WHERE {where} ORDER BY id LIMIT %s FOR UPDATE SKIP LOCKED)"
            "  RETURNING id, kind, order_id, status, payload, attempts - 1 AS attempts"
            ") SELECT * FROM claimed ORDER BY id",
            params,
        )
        return [OutboxRecord(*row) for row in self._cur.fetchall()]

    def mark_failed(self, record_id: int, error: str) -> None:
        """Take back the sent mark of a claimed record whose send failed (the attempt counts)."""
        self._cur.execute(
            "UPDATE outbox SET published_at = NULL, last_error = %s WHERE id = %s",
            (error[:500], record_id),
        )

    def record_failed_send(self, record_id: int, error: str) -> None:
        """Why a send made without a claim (the create path) failed; the sweeper retries it.

        SKIP LOCKED: if a relay claimed the record meanwhile, its outcome stands, and the
        request never waits for that relay's network calls (it did, for many seconds, when a
        sweeper held a large batch under load). One round trip: a whole transaction in one
        simple query (call it in autocommit mode) that skips the WAL flush wait, since a lost
        error note changes nothing but the sweeper's timing.
        """
        self._cur.execute(
            "BEGIN; SET LOCAL synchronous_commit TO OFF;"
            " UPDATE outbox SET attempts = attempts + 1, last_error = %(error)s"
            " WHERE id = (SELECT id FROM outbox"
            " WHERE id = %(id)s AND published_at IS NULL FOR UPDATE SKIP LOCKED);"
            " COMMIT",
            {"id": record_id, "error": error[:500]},
        )

    def purge_idempotency_keys(self, older_than_hours: int) -> int:
        self._cur.execute(
            "DELETE FROM idempotency_keys WHERE created_at < now() - make_interval(hours => %s)",
            (older_than_hours,),
        )
        return self._cur.rowcount
