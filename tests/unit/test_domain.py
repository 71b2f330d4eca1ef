import itertools
from decimal import Decimal

import pytest

from processor.domain.model import (
    CANCELLABLE_STATUSES,
    FINAL_STATUSES,
    REFUNDABLE_STATUSES,
    TRANSITIONS,
    InvalidTransition,
    LineItem,
    Status,
    check_transition,
    order_total,
    to_money,
)


def test_every_status_has_a_row_in_the_transition_table():
    assert set(TRANSITIONS) == set(Status)


def test_final_statuses_are_the_outcomes_where_processing_ends():
    assert {
        Status.COMPLETED,
        Status.PAYMENT_FAILED,
        Status.CANCELLED,
        Status.REFUNDED,
    } == FINAL_STATUSES


def test_orders_can_be_cancelled_until_their_payment_is_captured():
    assert {Status.PENDING, Status.PROCESSING, Status.PAYMENT_CONFIRMED} == CANCELLABLE_STATUSES


def test_only_captured_orders_can_be_refunded_and_refunded_is_the_end():
    assert {Status.FULFILLED, Status.COMPLETED} == REFUNDABLE_STATUSES
    assert TRANSITIONS[Status.REFUNDED] == frozenset()


def test_happy_path_is_a_chain_of_allowed_transitions():
    path = [
        Status.PENDING,
        Status.PROCESSING,
        Status.PAYMENT_CONFIRMED,
        Status.FULFILLED,
        Status.COMPLETED,
    ]
    for current, target in itertools.pairwise(path):
        check_transition(current, target)


@pytest.mark.parametrize(
    ("current", "target"),
    [
        (Status.PENDING, Status.COMPLETED),
        (Status.COMPLETED, Status.PROCESSING),
        (Status.FULFILLED, Status.CANCELLED),
        (Status.REFUNDED, Status.COMPLETED),
        (Status.CANCELLED, Status.PROCESSING),
        (Status.PAYMENT_FAILED, Status.PAYMENT_CONFIRMED),
    ],
)
def test_transitions_outside_the_table_are_rejected(current, target):
    with pytest.raises(InvalidTransition):
        check_transition(current, target)


def test_lifecycle_graph_has_no_cycles_so_each_status_occurs_once_per_order():
    def reachable(start, seen=()):
        for nxt in TRANSITIONS[start]:
            assert nxt not in (*seen, start)
            reachable(nxt, (*seen, start))

    reachable(Status.PENDING)


def test_money_is_exact():
    items = [LineItem("a", 1, Decimal("0.10")), LineItem("b", 1, Decimal("0.20"))]
    assert order_total(items) == Decimal("0.30")
    assert str(order_total(items)) == "0.30"


def test_total_multiplies_quantity_and_sums_lines():
    items = [LineItem("Widget", 2, Decimal("24.99")), LineItem("Gadget", 1, Decimal("75.99"))]
    assert order_total(items) == Decimal("125.97")


def test_to_money_rounds_half_up_to_cents():
    assert to_money(Decimal("1.005")) == Decimal("1.01")
    assert to_money(3) == Decimal("3.00")
