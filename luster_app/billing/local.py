"""The embedded payment provider: a local checkout page stands in for Stripe on one operator's machine."""

from __future__ import annotations

import secrets
import uuid
from typing import Any

from sqlalchemy import update
from sqlalchemy.engine import Engine

from luster_app.billing.base import Dispute, LineItem, PaymentError, ProviderCheckout, Refund, WebhookRejected
from luster_app.billing.packs import Pack
from luster_app.config import Settings
from luster_app.db import new_session
from luster_app.models import CheckoutSession

LOCAL_SESSION_PREFIX = "cs_local_"


class LocalPayments:
    """Checkout without a payment processor: the session row is the "processor's" record."""

    name = "local"

    def __init__(self, *, settings: Settings, db: Engine) -> None:
        if settings.is_production:
            raise RuntimeError(
                "the local payment provider is for one operator's machine and refuses LUSTER_ENV=production; "
                "set STRIPE_SECRET_KEY and STRIPE_WEBHOOK_SECRET to take payments through Stripe"
            )
        self.settings = settings
        self.db = db

    def checkout_page_url(self, session_id: str) -> str:
        return f"{self.settings.app_url}/api/billing/local-checkout/{session_id}"

    def create_checkout(
        self, *, pack: Pack, user_id: uuid.UUID, success_url: str, cancel_url: str, customer_email: str | None = None
    ) -> ProviderCheckout:
        session_id = LOCAL_SESSION_PREFIX + secrets.token_hex(16)
        return ProviderCheckout(
            id=session_id,
            url=self.checkout_page_url(session_id),
            status="open",
            payment_status="unpaid",
            amount_total=pack.price,
            currency=pack.currency,
            client_reference_id=str(user_id),
            metadata={"user_id": str(user_id), "pack": pack.id},
            line_items=(LineItem(price_id=f"local_{pack.id}", quantity=1, amount_total=pack.price, pack_id=pack.id),),
        )

    def pay(self, session_id: str) -> None:
        """What the "Pay" button does: the local processor takes the money (once)."""
        with new_session(self.db) as session:
            session.execute(
                update(CheckoutSession)
                .where(CheckoutSession.id == session_id, CheckoutSession.status == "open")
                .values(status="paid")
            )
            session.commit()

    def retrieve_checkout(self, session_id: str) -> ProviderCheckout:
        with new_session(self.db) as session:
            row = session.get(CheckoutSession, session_id)
        if row is None:
            raise PaymentError("no such checkout session")
        paid = row.status == "paid"
        return ProviderCheckout(
            id=row.id,
            url=self.checkout_page_url(row.id),
            status="complete" if paid else "open",
            payment_status="paid" if paid else "unpaid",
            amount_total=row.amount_total,
            currency=row.currency,
            client_reference_id=str(row.user_id),
            metadata={"user_id": str(row.user_id), "pack": row.pack_id},
            line_items=(
                LineItem(price_id=f"local_{row.pack_id}", quantity=1, amount_total=row.amount_total, pack_id=row.pack_id),
            ),
        )

    def find_checkout_by_payment_intent(self, payment_intent_id: str) -> ProviderCheckout | None:
        return None  # local payments have no PaymentIntents

    def list_refunds(self, charge_id: str) -> list[Refund]:
        return []

    def list_disputes(self, charge_id: str) -> list[Dispute]:
        return []

    def verify_webhook(self, payload: bytes, signature_header: str | None) -> dict[str, Any]:
        raise WebhookRejected("Stripe webhooks are off: set STRIPE_SECRET_KEY and STRIPE_WEBHOOK_SECRET")
