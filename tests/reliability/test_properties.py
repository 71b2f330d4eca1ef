"""Property tests: exact money for any item list, and a consistent lifecycle for any
interleaving of deliveries, duplicate and concurrent deliveries, crashes (after a committed
step, or after the provider acted but before its answer was recorded), cancels (voiding an
authorisation), captures and refunds (partial, full, repeated with their key, concurrent).

The lifecycle properties run against the real PostgreSQL and moto (SES), because what they
protect (guarded updates, row locks, SKIP LOCKED relays) lives in the database.
"""

from __future__ import annotations

import contextlib
import itertools
import os
import threading
from collections import Counter
from collections.abc import Callable, Iterator
from decimal import Decimal
from fractions import Fraction
from typing import Any
from unittest import mock
from uuid import UUID

import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from processor import bootstrap
from processor.adapters.payments.base import TransientPaymentError
from processor.api.schemas import MAX_TOTAL, CreateOrderRequest
from processor.domain.errors import (
    InvalidOrderState,
    PaymentProviderUnavailable,
    RefundExceedsCaptured,
)
from processor.domain.model import FINAL_STATUSES, TRANSITIONS, Status
from processor.jsonutil import dumps, loads
from processor.ops.invariants import PAYMENT_STATUSES
from processor.orders import service as order_service
from processor.outbox import relay as outbox
from processor.payments import service as payment_service
from processor.processing import service as processing
from tests import helpers
from tests.reliability.chaos.audit import UUID_PATTERN, expected_subjects
from tests.reliability.chaos.report import MONEY_MAX_EXAMPLES, PROPERTY_MAX_EXAMPLES

DB_SETTINGS = settings(
    max_examples=PROPERTY_MAX_EXAMPLES,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)

# (quantity, unit price in integer cents): the whole accepted range, edges included.
LINES = st.lists(
    st.tuples(st.integers(1, 10_000), st.integers(0, 100_000_000)), min_size=1, max_size=100
)


def _price_text(cents: int) -> str:
    return f"{cents // 100}.{cents % 100:02d}"


def _request_json(lines: list[tuple[int, int]], email: str = "prop@example.com") -> str:
    """The request as a client would send it: prices as JSON number tokens like 24.99."""
    items = ", ".join(
        f'{{"product_name": "p{n}", "quantity": {q}, "unit_price": {_price_text(c)}}}'
        for n, (q, c) in enumerate(lines)
    )
    return f'{{"customer_email": "{email}", "customer_name": "P", "items": [{items}]}}'


@given(lines=LINES)
@settings(max_examples=MONEY_MAX_EXAMPLES, deadline=None)
def test_totals_are_the_exact_sum_of_integer_cents_for_any_item_list(lines):
    cents = sum(q * c for q, c in lines)
    data = loads(_request_json(lines))
    if Fraction(cents, 100) > MAX_TOTAL:
        with pytest.raises(ValidationError):
            CreateOrderRequest.model_validate(data)
        return
    request = CreateOrderRequest.model_validate(data)
    assert request.total() == Fraction(cents, 100)
    for item, (quantity, price) in zip(request.line_items(), lines, strict=True):
        assert item.subtotal == Fraction(quantity * price, 100)
    # ...and the JSON written for it carries the same digits, not a float approximation.
    assert f'"total": {_price_text(cents)}' in dumps({"total": request.total()})


@given(lines=LINES)
@settings(max_examples=MONEY_MAX_EXAMPLES // 3, deadline=None)
def test_more_than_two_decimals_are_rejected_rather_than_rounded(lines):
    text = _request_json(lines).replace(f"{_price_text(lines[0][1])}}}", "0.001}", 1)
    assume("0.001" in text)
    with pytest.raises(ValidationError):
        CreateOrderRequest.model_validate(loads(text))


@given(
    lines=st.lists(st.tuples(st.integers(1, 50), st.integers(0, 99_999)), min_size=1, max_size=8)
)
@DB_SETTINGS
def test_stored_and_served_totals_are_the_integer_cent_sum(system, lines):
    request = CreateOrderRequest.model_validate(loads(_request_json(lines)))
    created, _ = order_service.create_order(request)
    served = order_service.get_order(UUID(created["order_id"]))
    assert (
        served["total_amount"]
        == created["total_amount"]
        == Fraction(sum(q * c for q, c in lines), 100)
    )
    assert [i["subtotal"] for i in served["items"]] == [Fraction(q * c, 100) for q, c in lines]
    with system["db"].cursor() as cur:
        cur.execute("SELECT total_amount FROM orders WHERE order_id = %s", (created["order_id"],))
        assert cur.fetchone()[0] == Fraction(sum(q * c for q, c in lines), 100)


# --- the lifecycle under any interleaving ---------------------------------------------------


class Crash(Exception):
    """Injected: the process dies right after a step committed."""


class LosingProvider(helpers.CountingProvider):
    """The counting simulator that can "lose" its next answer to an operation: the provider
    acts (the simulator remembers the answer under the key), then the caller dies before
    recording it, as a process killed during the call would."""

    def __init__(self) -> None:
        super().__init__()
        self.lose_next: set[str] = set()

    def _maybe_lose(self, operation: str, result: Any) -> Any:
        if operation in self.lose_next:
            self.lose_next.discard(operation)
            raise Crash(f"died after the provider's {operation} answered")
        return result

    def authorize(self, request: Any) -> Any:
        return self._maybe_lose("authorize", super().authorize(request))

    def capture(self, idempotency_key: str, reference: str, amount_minor: int) -> Any:
        return self._maybe_lose(
            "capture", super().capture(idempotency_key, reference, amount_minor)
        )

    def cancel(self, idempotency_key: str, reference: str) -> Any:
        return self._maybe_lose("cancel", super().cancel(idempotency_key, reference))

    def refund(self, idempotency_key: str, reference: str, amount_minor: int, reason: Any) -> Any:
        return self._maybe_lose(
            "refund", super().refund(idempotency_key, reference, amount_minor, reason)
        )


@contextlib.contextmanager
def crash_after(steps: int | None) -> Iterator[None]:
    """Make the `steps`-th step of the next delivery raise right after it returned (its
    transaction has committed by then)."""
    if steps is None:
        yield
        return
    done = 0

    def wrap(step: Callable[..., Status]) -> Callable[..., Status]:
        def crashing(order_id: UUID, deps: Any) -> Status:
            nonlocal done
            result = step(order_id, deps)
            done += 1
            if done == steps:
                raise Crash(f"after step {steps}")
            return result

        return crashing

    with mock.patch.dict(processing.STEPS, {s: wrap(f) for s, f in processing.STEPS.items()}):
        yield


def _deliver(order_id: UUID) -> None:
    """One message delivery; errors the consumer would retry are what SQS redelivers."""
    with contextlib.suppress(Crash, TransientPaymentError):
        processing.process_order(order_id)


def _cancel(order_id: UUID) -> None:
    with contextlib.suppress(InvalidOrderState, Crash, PaymentProviderUnavailable):
        order_service.cancel_order(order_id)


def _refund(order_id: UUID, cents: int | None, key: str | None = None) -> None:
    amount = None if cents is None else Decimal(cents) / 100
    with contextlib.suppress(
        InvalidOrderState, RefundExceedsCaptured, Crash, PaymentProviderUnavailable
    ):
        payment_service.create_refund(order_id, payment_service.RefundRequest(amount), key)


def _together(*calls: Callable[[], None]) -> None:
    """Start the calls at the same moment on separate threads (and connections)."""
    gate = threading.Barrier(len(calls))
    errors: list[BaseException] = []

    def run(call: Callable[[], None]) -> None:
        gate.wait(timeout=10)
        try:
            call()
        except BaseException as error:
            errors.append(error)

    threads = [threading.Thread(target=run, args=(call,)) for call in calls]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    assert not errors, errors


ACTIONS = st.one_of(
    st.tuples(st.just("deliver"), st.none() | st.integers(1, 4)),
    st.tuples(st.just("duplicate deliveries"), st.integers(2, 3)),
    st.tuples(st.just("cancel"), st.none()),
    st.tuples(st.just("cancel during delivery"), st.none()),
    st.tuples(st.just("relay"), st.none()),
    st.tuples(st.just("refund"), st.none() | st.integers(1, 5000)),
    st.tuples(st.just("refund twice with one key"), st.integers(1, 3000)),
    st.tuples(st.just("refunds at once"), st.integers(1, 3000)),
    st.tuples(st.just("refund during delivery"), st.none()),
    st.tuples(
        st.just("lose the next answer"),
        st.sampled_from(["authorize", "capture", "cancel", "refund"]),
    ),
)


def _apply(provider: LosingProvider, order_id: UUID, action: str, arg: Any) -> None:
    if action == "refund":
        _refund(order_id, arg)
    elif action == "refund twice with one key":
        key = f"k-{order_id}-{arg}"
        _refund(order_id, arg, key)
        _refund(order_id, arg, key)
    elif action == "refunds at once":
        _together(lambda: _refund(order_id, arg), lambda: _refund(order_id, arg))
    elif action == "refund during delivery":
        _together(lambda: _deliver(order_id), lambda: _refund(order_id, None))
    elif action == "lose the next answer":
        provider.lose_next.add(arg)
    elif action == "deliver":
        with crash_after(arg):
            _deliver(order_id)
    elif action == "duplicate deliveries":
        _together(*[lambda: _deliver(order_id)] * (arg or 2))
    elif action == "cancel":
        _cancel(order_id)
    elif action == "cancel during delivery":
        _together(lambda: _deliver(order_id), lambda: _cancel(order_id))
    else:
        outbox.publish(order_id=order_id, kind="notification")


@pytest.fixture
def provider(system: dict[str, Any], configure: Any) -> Iterator[LosingProvider]:
    configure(PAYMENT_RETRY_ATTEMPTS="1")  # so `+flaky` errors reach the consumer (redelivery)
    counting = LosingProvider()
    bootstrap.set_payment_provider(counting)
    yield counting
    bootstrap.set_payment_provider(None)


@given(
    customer=st.sampled_from(["ok", "decline", "flaky"]),
    actions=st.lists(ACTIONS, max_size=8),
)
@DB_SETTINGS
def test_any_interleaving_ends_in_one_final_state_with_a_consistent_history(
    system, provider, customer, actions
):
    email = {"ok": "a@example.com", "decline": "a+decline@example.com"}.get(
        customer, "a+flaky@example.com"
    )
    request = CreateOrderRequest.model_validate(loads(_request_json([(2, 1999)], email)))
    order_id = UUID(order_service.create_order(request)[0]["order_id"])
    for action, arg in actions:
        _apply(provider, order_id, action, arg)
    provider.lose_next.clear()
    for _ in range(10):  # SQS keeps redelivering until the order is final
        _deliver(order_id)
    outbox.publish(order_id=order_id, kind="notification")

    db = system["db"]
    with db.cursor() as cur:
        cur.execute("SELECT status FROM orders WHERE order_id = %s", (order_id,))
        status = Status(cur.fetchone()[0])
        cur.execute(
            "SELECT status FROM order_status_history WHERE order_id = %s ORDER BY id", (order_id,)
        )
        path = [Status(s) for (s,) in cur.fetchall()]
        cur.execute(
            "SELECT status, provider_ref, authorized_minor, captured_minor, refunded_minor"
            " FROM payments WHERE order_id = %s",
            (order_id,),
        )
        payments = cur.fetchall()
        cur.execute(
            "SELECT amount_minor, status, provider_key FROM refunds WHERE order_id = %s",
            (order_id,),
        )
        refunds = cur.fetchall()
        cur.execute(
            "SELECT status, published_at IS NOT NULL FROM outbox"
            " WHERE order_id = %s AND kind = 'notification'",
            (order_id,),
        )
        notes = cur.fetchall()

    assert status in FINAL_STATUSES
    assert path[0] == Status.PENDING and path[-1] == status
    assert all(b in TRANSITIONS[a] for a, b in itertools.pairwise(path)), path
    assert len(set(path)) == len(path)
    # Processing ends once; only a refund moves an order on from COMPLETED.
    assert [s for s in path if s in FINAL_STATUSES] in ([status], [Status.COMPLETED, status])
    assert len(payments) <= 1
    assert (payments[0][0] if payments else "NONE") in PAYMENT_STATUSES[status]
    # One PaymentIntent per order: every authorisation under the order's one key, and the
    # simulator (like Stripe) answers a key with one reference.
    keys = {f"order-{order_id}-{operation}" for operation in ("authorize", "capture", "void")}
    mine = [(op, key) for op, key in provider.operations if str(order_id) in key]
    assert {key for _, key in mine} <= keys
    answer = provider.authorizations.get(f"order-{order_id}-authorize")
    # Never captured and cancelled both: the capture and void intents exclude each other.
    assert not ({"capture", "cancel"} <= {op for op, _ in mine})
    if payments:
        payment_status, reference, authorized, captured, refunded = payments[0]
        assert reference is None or (answer is not None and reference == answer.reference)
        assert refunded <= captured <= authorized
        assert (captured > 0) == (payment_status == "CAPTURED")
        assert refunded == sum(a for a, s, _ in refunds if s == "SUCCEEDED")
        assert sum(a for a, s, _ in refunds if s != "FAILED") <= captured
        assert (status == Status.REFUNDED) == (0 < captured == refunded)
    else:
        assert refunds == []
    # One provider refund per refund key: each stored refund has a key of its own, and a
    # succeeded one was answered under that key (a repeat after a lost answer reuses it).
    refund_keys = {key for op, key in provider.operations if op == "refund"}
    stored_keys = [key for _, _, key in refunds]
    assert len(stored_keys) == len(set(stored_keys))
    assert all(key in refund_keys for _, s, key in refunds if s == "SUCCEEDED")
    assert sorted(s for s, _ in notes) == sorted(path)
    assert all(sent for _, sent in notes)
    assert _emails(str(order_id)) == Counter(path)


def _emails(order_id: str) -> Counter[str]:
    from processor.devstack.local import sent_emails

    subjects = expected_subjects(order_id)
    found: Counter[str] = Counter()
    for email in sent_emails(os.environ["AWS_ENDPOINT_URL"]):
        match = UUID_PATTERN.search(email.get("body") or "")
        if match and match.group(0) == order_id:
            found[subjects.get(email["subject"], "?")] += 1
    return found
