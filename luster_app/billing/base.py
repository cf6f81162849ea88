"""What every payment provider offers the billing service: Checkout Sessions, refunds, webhooks."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from typing import Any, Protocol

from luster_app.billing.packs import Pack


class PaymentError(Exception):
    """The payment provider could not be reached or refused a request; safe to show."""


class WebhookRejected(Exception):
    """A webhook delivery that must not be processed (bad signature, stale or future timestamp)."""


@dataclass(frozen=True)
class LineItem:
    """One line of a Checkout Session; `pack_id` is set when the price is a known pack's price."""

    price_id: str
    quantity: int
    amount_total: int
    pack_id: str | None = None


@dataclass(frozen=True)
class ProviderCheckout:
    """A Checkout Session as the provider sees it now."""

    id: str
    url: str | None
    status: str  # open, complete, expired
    payment_status: str  # paid, unpaid, no_payment_required
    amount_total: int
    currency: str
    client_reference_id: str | None
    metadata: dict[str, str] = field(default_factory=dict)
    payment_intent_id: str | None = None
    line_items: tuple[LineItem, ...] = ()

    @property
    def is_paid(self) -> bool:
        return self.payment_status == "paid"


@dataclass(frozen=True)
class Refund:
    id: str
    amount: int
    status: str  # pending, requires_action, succeeded, failed, canceled
    created: int

    @property
    def counts(self) -> bool:
        """Whether the money is (or is about to be) back with the customer."""
        return self.status not in ("failed", "canceled")


@dataclass(frozen=True)
class Dispute:
    id: str
    amount: int
    status: str  # warning_needs_response, warning_under_review, warning_closed, needs_response, under_review, won, lost

    @property
    def counts(self) -> bool:
        """Whether the money is (or may end up) back with the customer: an inquiry or dispute
        still open, or lost. Only a dispute won, or an inquiry closed, leaves it with us."""
        return self.status not in ("won", "warning_closed")


class PaymentProvider(Protocol):
    name: str

    def create_checkout(
        self, *, pack: Pack, user_id: uuid.UUID, success_url: str, cancel_url: str, customer_email: str | None = None
    ) -> ProviderCheckout:
        """A new payment-mode Checkout Session for one pack, whose `url` the browser opens; the
        buyer's `customer_email` pre-filled (Stripe sends its receipt there when receipts are on)."""
        ...

    def retrieve_checkout(self, session_id: str) -> ProviderCheckout:
        """The session with its line items (PaymentError if unknown or unreachable)."""
        ...

    def find_checkout_by_payment_intent(self, payment_intent_id: str) -> ProviderCheckout | None:
        """The Checkout Session that created this PaymentIntent, with line items, or None."""
        ...

    def list_refunds(self, charge_id: str) -> list[Refund]:
        """Every refund of a charge."""
        ...

    def list_disputes(self, charge_id: str) -> list[Dispute]:
        """Every dispute (and inquiry) of a charge."""
        ...

    def verify_webhook(self, payload: bytes, signature_header: str | None) -> dict[str, Any]:
        """The event in a webhook delivery, after checking its signature and timestamp."""
        ...
