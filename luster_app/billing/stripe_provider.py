"""Stripe-hosted Checkout through the official `stripe` client, pointed at STRIPE_API_BASE when set."""

from __future__ import annotations

import json
import time
import uuid
from typing import Any

import stripe

from luster_app.billing.base import Dispute, LineItem, PaymentError, ProviderCheckout, Refund, WebhookRejected
from luster_app.billing.packs import Pack
from luster_app.config import Settings

# Stripe's own default; we apply the same window to timestamps in the future, which the
# library does not check (a captured delivery must not stay replayable later).
WEBHOOK_TOLERANCE_SECONDS = 300
REQUEST_TIMEOUT_SECONDS = 30


def _id_of(value: Any) -> str | None:
    """An expandable field's id, whether Stripe sent the id or the expanded object."""
    if isinstance(value, dict):
        return value.get("id")
    return value or None


def checkout_from_stripe(data: dict[str, Any], price_ids: dict[str, str]) -> ProviderCheckout:
    """A ProviderCheckout from a Checkout Session's JSON (its `line_items` when expanded)."""
    pack_by_price = {price_id: pack_id for pack_id, price_id in price_ids.items()}
    line_items = []
    for item in (data.get("line_items") or {}).get("data", []):
        price_id = _id_of(item.get("price")) or ""
        line_items.append(
            LineItem(
                price_id=price_id,
                quantity=int(item.get("quantity") or 0),
                amount_total=int(item.get("amount_total") or 0),
                pack_id=pack_by_price.get(price_id),
            )
        )
    return ProviderCheckout(
        id=data["id"],
        url=data.get("url"),
        status=data.get("status") or "open",
        payment_status=data.get("payment_status") or "unpaid",
        amount_total=int(data.get("amount_total") or 0),
        currency=data.get("currency") or "",
        client_reference_id=data.get("client_reference_id"),
        metadata={str(k): str(v) for k, v in (data.get("metadata") or {}).items()},
        payment_intent_id=_id_of(data.get("payment_intent")),
        line_items=tuple(line_items),
    )


def _header_timestamp(signature_header: str) -> int:
    for part in signature_header.split(","):
        key, _, value = part.strip().partition("=")
        if key == "t":
            return int(value)
    raise ValueError("no timestamp")


class StripePayments:
    """Payments through Stripe: Checkout Sessions, refunds, signature-verified webhooks."""

    name = "stripe"

    def __init__(self, *, settings: Settings) -> None:
        self.settings = settings
        base_addresses = {"api": settings.stripe_api_base} if settings.stripe_api_base else None
        self.client = stripe.StripeClient(
            settings.stripe_secret_key,
            base_addresses=base_addresses,
            max_network_retries=2,
            http_client=stripe.new_default_http_client(timeout=REQUEST_TIMEOUT_SECONDS),
        )

    def _call(self, fn: Any, *args: Any, **kwargs: Any) -> dict[str, Any]:
        try:
            return fn(*args, **kwargs).to_dict()
        except stripe.StripeError as exc:
            # The user sees this; Stripe's messages name no secrets.
            raise PaymentError(f"the payment service refused the request: {exc.user_message or exc.__class__.__name__}") from exc

    def create_checkout(
        self, *, pack: Pack, user_id: uuid.UUID, success_url: str, cancel_url: str, customer_email: str | None = None
    ) -> ProviderCheckout:
        price_id = self.settings.stripe_price_ids.get(pack.id)
        if price_id:
            line_item: dict[str, Any] = {"price": price_id, "quantity": 1}
        else:
            line_item = {
                "price_data": {
                    "currency": pack.currency,
                    "unit_amount": pack.price,
                    "product_data": {"name": f"Luster {pack.name}: {pack.credits} credits"},
                },
                "quantity": 1,
            }
        params = {
            "mode": "payment",
            "line_items": [line_item],
            "client_reference_id": str(user_id),
            "metadata": {"user_id": str(user_id), "pack": pack.id},
            "success_url": success_url,
            "cancel_url": cancel_url,
            # The charge, its refunds and disputes then stay in the pack's currency, which is what
            # refunds and disputes are weighed against when they take credits back.
            "adaptive_pricing": {"enabled": False},
        }
        if customer_email:
            params["customer_email"] = customer_email  # pre-filled; Stripe's emailed receipt goes there
        data = self._call(self.client.v1.checkout.sessions.create, params=params)
        return checkout_from_stripe(data, self.settings.stripe_price_ids)

    def retrieve_checkout(self, session_id: str) -> ProviderCheckout:
        data = self._call(
            self.client.v1.checkout.sessions.retrieve, session_id, params={"expand": ["line_items"]}
        )
        return checkout_from_stripe(data, self.settings.stripe_price_ids)

    def find_checkout_by_payment_intent(self, payment_intent_id: str) -> ProviderCheckout | None:
        found = self._call(
            self.client.v1.checkout.sessions.list,
            params={"payment_intent": payment_intent_id, "limit": 1, "expand": ["data.line_items"]},
        )
        sessions = found.get("data") or []
        return checkout_from_stripe(sessions[0], self.settings.stripe_price_ids) if sessions else None

    def list_refunds(self, charge_id: str) -> list[Refund]:
        return [_refund_from_stripe(item) for item in self._list_all(self.client.v1.refunds.list, charge=charge_id)]

    def list_disputes(self, charge_id: str) -> list[Dispute]:
        return [_dispute_from_stripe(item) for item in self._list_all(self.client.v1.disputes.list, charge=charge_id)]

    def _list_all(self, list_page: Any, **filters: str) -> list[dict[str, Any]]:
        """Every item of a Stripe list, page after page."""
        items: list[dict[str, Any]] = []
        params: dict[str, Any] = {**filters, "limit": 100}
        while True:
            page = self._call(list_page, params=params)
            items += page.get("data") or []
            if not page.get("has_more") or not items:
                return items
            params["starting_after"] = items[-1]["id"]

    def verify_webhook(self, payload: bytes, signature_header: str | None) -> dict[str, Any]:
        try:
            stripe.Webhook.construct_event(
                payload, signature_header, self.settings.stripe_webhook_secret, tolerance=WEBHOOK_TOLERANCE_SECONDS
            )
            timestamp = _header_timestamp(signature_header or "")
        except (stripe.SignatureVerificationError, ValueError) as exc:
            raise WebhookRejected(f"invalid Stripe signature: {exc}") from exc
        if timestamp > time.time() + WEBHOOK_TOLERANCE_SECONDS:
            raise WebhookRejected("invalid Stripe signature: timestamp is in the future")
        return json.loads(payload)


def _refund_from_stripe(data: dict[str, Any]) -> Refund:
    return Refund(
        id=data["id"],
        amount=int(data.get("amount") or 0),
        status=data.get("status") or "succeeded",
        created=int(data.get("created") or 0),
    )


def _dispute_from_stripe(data: dict[str, Any]) -> Dispute:
    return Dispute(id=data["id"], amount=int(data.get("amount") or 0), status=data.get("status") or "needs_response")
