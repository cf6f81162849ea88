"""Billing test fixtures: the app wired to the fake Stripe over real HTTP, and a shopper's view of it."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from luster_app.api import create_api
from luster_app.config import Settings
from luster_app.context import AppContext
from luster_app.db import make_engine
from luster_app.models import CreditLedger, User
from tests.conftest import make_user
from tests.fakes.stripe_server import FakeStripe


@pytest.fixture
def fake_stripe() -> Iterator[FakeStripe]:
    fake = FakeStripe().start()
    yield fake
    fake.stop()


def stripe_settings(settings: Settings, fake: FakeStripe, **overrides: Any) -> Settings:
    """The test settings with the official Stripe client pointed at the fake."""
    return settings.model_copy(
        update={
            "stripe_secret_key": fake.api_key,
            "stripe_webhook_secret": fake.webhook_secret,
            "stripe_api_base": fake.url,
            **overrides,
        }
    )


class AuthHeaders(dict):
    """Request headers whose repr hides the bearer token: pytest prints arguments of a failing assertion."""

    def __repr__(self) -> str:
        return "AuthHeaders(Authorization=Bearer <redacted>)"

    __str__ = __repr__


@dataclass
class Shop:
    """The app under test as a photographer and Stripe see it."""

    context: AppContext
    client: TestClient
    stripe: FakeStripe

    def new_user(self) -> tuple[User, dict[str, str]]:
        user, headers = make_user(self.context)
        return user, AuthHeaders(headers)

    def checkout(self, headers: dict[str, str], pack: str = "starter") -> str:
        """Press "Buy": the checkout session id."""
        response = self.client.post("/api/billing/checkout", json={"pack": pack}, headers=headers)
        assert response.status_code == 200, response.text
        return response.json()["session_id"]

    def deliver(self, event: dict[str, Any], *, timestamp: int | None = None, body: bytes | None = None) -> httpx.Response:
        """Stripe posts a signed event to the webhook (`body` replaces what was signed)."""
        signed_body, headers = self.stripe.sign(event, timestamp=timestamp)
        return self.client.post("/api/webhooks/stripe", content=body if body is not None else signed_body, headers=headers)

    def deliver_ok(self, event: dict[str, Any]) -> dict[str, Any]:
        response = self.deliver(event)
        assert response.status_code == 200, response.text
        return response.json()

    def balance(self, headers: dict[str, str]) -> int:
        """The balance the user sees on /api/me."""
        response = self.client.get("/api/me", headers=headers)
        assert response.status_code == 200, response.text
        return response.json()["credits"]["balance"]

    def ledger(self, headers: dict[str, str]) -> list[dict[str, Any]]:
        response = self.client.get("/api/billing/ledger", params={"limit": 200}, headers=headers)
        assert response.status_code == 200, response.text
        return response.json()["entries"]

    def ledger_rows(self, user_id: uuid.UUID) -> list[CreditLedger]:
        with self.context.session() as session:
            return list(session.execute(select(CreditLedger).where(CreditLedger.user_id == user_id)).scalars())


def open_shop(settings: Settings, url: str, fake: FakeStripe) -> Iterator[Shop]:
    context = AppContext(settings, db=make_engine(url))
    with TestClient(create_api(context)) as client:
        yield Shop(context=context, client=client, stripe=fake)
    context.db.dispose()


@pytest.fixture
def shop(settings: Settings, db_url: str, fake_stripe: FakeStripe) -> Iterator[Shop]:
    """Stripe-backed shop on SQLite and on PostgreSQL."""
    yield from open_shop(stripe_settings(settings, fake_stripe), db_url, fake_stripe)


@pytest.fixture
def pg_shop(settings: Settings, pg_url: str, fake_stripe: FakeStripe) -> Iterator[Shop]:
    """Stripe-backed shop on PostgreSQL, for tests about concurrent deliveries."""
    yield from open_shop(stripe_settings(settings, fake_stripe), pg_url, fake_stripe)
