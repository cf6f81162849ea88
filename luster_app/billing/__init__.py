"""Payments: credit packs, the payment provider interface, Stripe Checkout and the local checkout."""

from __future__ import annotations

from typing import TYPE_CHECKING

from luster_app.billing.base import (
    Dispute,
    LineItem,
    PaymentError,
    PaymentProvider,
    ProviderCheckout,
    Refund,
    WebhookRejected,
)
from luster_app.billing.packs import PACKS, Pack, find_pack, format_money
from luster_app.config import PLACEHOLDER_SECRETS

if TYPE_CHECKING:
    from sqlalchemy.engine import Engine

    from luster_app.config import Settings

__all__ = [
    "PACKS",
    "Dispute",
    "LineItem",
    "Pack",
    "PaymentError",
    "PaymentProvider",
    "ProviderCheckout",
    "Refund",
    "WebhookRejected",
    "build_payments",
    "find_pack",
    "format_money",
]


def build_payments(settings: Settings, db: Engine) -> PaymentProvider:
    """Stripe when STRIPE_SECRET_KEY is set, else the local checkout page (never in production)."""
    if settings.uses_stripe:
        from luster_app.billing.stripe_provider import StripePayments

        if settings.is_production and settings.stripe_webhook_secret.strip().lower() in PLACEHOLDER_SECRETS:
            # Whoever knows the secret can sign events that grant and claw back credits.
            raise RuntimeError("LUSTER_ENV=production needs STRIPE_WEBHOOK_SECRET (whsec_…): paid credits arrive by webhook")
        return StripePayments(settings=settings)
    from luster_app.billing.local import LocalPayments

    return LocalPayments(settings=settings, db=db)
