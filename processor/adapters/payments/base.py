"""The payment provider interface, after Medusa's `AbstractPaymentProvider`: one operation per
lifecycle step, amounts (integer minor units) and currency passed explicitly on every call,
and every mutating call carrying its own idempotency key.

The core never imports a provider SDK: it calls these methods and records their answers, and
it turns a provider's webhook into a neutral `WebhookAction` (the reconciler acts on those,
not on Stripe events). A provider must treat an idempotency key as Stripe does: the same key
repeats the first answer and never moves money twice, which is what lets the processor commit
its intent, call the provider without a database transaction open, and repeat the call after
a crash.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import ClassVar


class TransientPaymentError(Exception):
    """The provider could not answer (timeout, 429, 5xx, connection lost): the outcome is
    unknown, so the same call (same idempotency key) may and must be repeated."""


class PaymentState(StrEnum):
    """A payment as the provider sees it, in neutral words (Stripe's PaymentIntent statuses
    map onto these)."""

    AUTHORIZED = "AUTHORIZED"  # requires_capture
    DECLINED = "DECLINED"  # the card was refused; decline_code says why
    REQUIRES_ACTION = "REQUIRES_ACTION"  # the customer must authenticate (3-D Secure)
    CAPTURED = "CAPTURED"  # succeeded
    CANCELED = "CANCELED"  # the authorisation was voided (or expired)
    FAILED = "FAILED"  # a capture or void the provider refused for good


@dataclass(frozen=True)
class Authorization:
    """What `authorize` needs. `attempt` counts earlier tries of the same operation (the
    simulator's `+flaky` test data uses it; real providers ignore it)."""

    idempotency_key: str
    order_id: str
    amount_minor: int
    currency: str
    payment_method: str | None
    customer_email: str
    attempt: int = 0


@dataclass(frozen=True)
class PaymentResult:
    state: PaymentState
    reference: str | None = None  # the provider's id, e.g. the PaymentIntent id
    amount_authorized: int = 0
    amount_captured: int = 0
    decline_code: str | None = None
    message: str | None = None

    @property
    def approved(self) -> bool:
        return self.state in (PaymentState.AUTHORIZED, PaymentState.CAPTURED)


@dataclass(frozen=True)
class RefundResult:
    succeeded: bool
    reference: str | None = None
    message: str | None = None


class WebhookActionKind(StrEnum):
    AUTHORIZED = "authorized"
    CAPTURED = "captured"
    FAILED = "failed"
    CANCELED = "canceled"
    REFUNDED = "refunded"
    NOT_SUPPORTED = "not_supported"


@dataclass(frozen=True)
class WebhookAction:
    """A provider event in neutral terms: which order (from the payment's metadata), what
    happened and the amount concerned, in minor units."""

    kind: WebhookActionKind
    order_id: str | None = None
    reference: str | None = None
    amount_minor: int = 0


class InvalidWebhook(Exception):
    """A webhook whose signature or body does not check out; answer 400, act on nothing."""


class PaymentProvider(ABC):
    """One class per processor; `identifier` is the PAYMENT_PROVIDER setting that selects it."""

    identifier: ClassVar[str]
    # Whether an order must name a payment method (a real card processor cannot guess one).
    requires_payment_method: ClassVar[bool] = False

    @abstractmethod
    def authorize(self, request: Authorization) -> PaymentResult:
        """Create and confirm a manual-capture payment for the order's total."""

    @abstractmethod
    def capture(self, idempotency_key: str, reference: str, amount_minor: int) -> PaymentResult:
        """Capture an authorised payment: CAPTURED, or FAILED when refused for good."""

    @abstractmethod
    def cancel(self, idempotency_key: str, reference: str) -> PaymentResult:
        """Void an uncaptured authorisation: CANCELED (also when it already was)."""

    @abstractmethod
    def refund(
        self, idempotency_key: str, reference: str, amount_minor: int, reason: str | None
    ) -> RefundResult:
        """Return part or all of a captured payment."""

    @abstractmethod
    def retrieve(self, reference: str) -> PaymentResult:
        """The payment as the provider has it now (the reconciler compares it with ours)."""

    @abstractmethod
    def webhook_action(self, body: bytes, headers: Mapping[str, str]) -> WebhookAction:
        """Verify a webhook delivery and translate it; raises InvalidWebhook."""
