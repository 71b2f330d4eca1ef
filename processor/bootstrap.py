"""The composition root: the one place that decides which unit of work, payment provider and
outbox publisher the use cases run with.

Entrypoints (the Chalice routes, the queue consumer, the CLI) call the use cases without
dependencies and get `dependencies()`: PostgreSQL's unit of work, the configured payment
provider and the outbox relay. Unit tests pass a `Dependencies` of fakes instead
(tests/unit/fakes.py), so the use cases run without a database, a queue or a patch.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol
from uuid import UUID

from db.repository import OutboxRecord
from db.uow import UnitOfWork
from processor.adapters.payments.base import PaymentProvider
from processor.adapters.payments.simulator import SimulatedPaymentProvider
from processor.config import Settings, settings
from processor.outbox import relay


class Publisher(Protocol):
    """Sends committed outbox records at once; what it cannot send, the sweeper sends later,
    so neither method raises."""

    def publish_new_order(self, record: OutboxRecord) -> None: ...

    def publish_notifications(self, order_id: UUID) -> None: ...


class OutboxPublisher:
    """The real publisher: the outbox relay."""

    def publish_new_order(self, record: OutboxRecord) -> None:
        relay.publish_new_order(record)

    def publish_notifications(self, order_id: UUID) -> None:
        relay.publish_quietly(order_id=order_id, kind="notification")


@dataclass(frozen=True)
class Dependencies:
    settings: Settings
    uow: Callable[..., UnitOfWork]  # called as uow() or uow(single_statement=True)
    payments: PaymentProvider
    publisher: Publisher


_provider: PaymentProvider | None = None
_publisher = OutboxPublisher()


def payment_provider() -> PaymentProvider:
    """The provider PAYMENT_PROVIDER names, built on first use. The Stripe adapter is imported
    only then, so a function that never calls a provider never loads it."""
    global _provider
    if _provider is None:
        config = settings()
        if config.payment_provider == "stripe":
            from processor.adapters.payments.stripe_rest import StripeProvider, secret_key_reader

            _provider = StripeProvider(
                config.stripe_api_base,
                secret_key_reader(config.stripe_secret_key_arn, config.stripe_api_base),
                config.stripe_timeout_seconds,
            )
        else:
            _provider = SimulatedPaymentProvider(config)
    return _provider


def set_payment_provider(provider: PaymentProvider | None) -> None:
    """Swap the provider (integration tests, or a real processor wired in at start-up); None
    goes back to the simulator, built from the settings of that moment."""
    global _provider
    _provider = provider


def dependencies() -> Dependencies:
    """The production wiring, assembled per call: settings may be reloaded (tests, `--stack`)
    and the provider swapped, and assembling it costs nothing next to one query."""
    return Dependencies(settings(), UnitOfWork, payment_provider(), _publisher)
