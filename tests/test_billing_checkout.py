"""Buying a pack: packs, Stripe Checkout over real HTTP, the success page, the local checkout page, the ledger."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient

from luster_app.api import create_api
from luster_app.billing import PACKS
from luster_app.config import Settings
from luster_app.context import AppContext
from luster_app.db import make_engine
from luster_app.services.credits import apply_ledger_entry
from tests.billing_support import Shop, fake_stripe, open_shop, shop, stripe_settings  # noqa: F401  (fixtures)
from tests.conftest import make_user
from tests.fakes.stripe_server import FakeStripe


def test_packs_are_listed_with_credits_and_prices(client: TestClient) -> None:
    response = client.get("/api/billing/packs")
    assert response.status_code == 200
    packs = response.json()
    assert [p["id"] for p in packs] == [pack.id for pack in PACKS]
    starter = packs[0]
    assert starter == {"id": "starter", "name": "Starter", "credits": 10, "price": 1200, "currency": "usd",
                       "price_display": "$12.00"}


def test_checkout_opens_a_payment_session_at_stripe_for_the_caller(shop: Shop) -> None:
    user, headers = shop.new_user()
    response = shop.client.post("/api/billing/checkout", json={"pack": "pro"}, headers=headers)
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["url"] == f"https://checkout.stripe.com/c/pay/{body['session_id']}"
    method, path, sent = shop.stripe.requests[-1]
    assert (method, path) == ("POST", "/v1/checkout/sessions")
    assert sent["mode"] == "payment"
    assert sent["client_reference_id"] == str(user.id)
    assert sent["metadata"] == {"user_id": str(user.id), "pack": "pro"}
    assert sent["success_url"] == "http://testserver/billing/success?session_id={CHECKOUT_SESSION_ID}"
    assert sent["cancel_url"] == "http://testserver/billing/cancel"
    assert sent["adaptive_pricing"] == {"enabled": "false"}  # charged in the pack's own currency
    assert sent["customer_email"] == user.email  # pre-filled; Stripe's emailed receipt goes there
    assert sent["line_items"] == [
        {"price_data": {"currency": "usd", "unit_amount": "5000", "product_data": {"name": "Luster Pro: 50 credits"}},
         "quantity": "1"}
    ]
    assert shop.balance(headers) == 0  # nothing before payment


def test_checkout_uses_the_configured_stripe_price(settings: Settings, sqlite_url: str, fake_stripe: FakeStripe) -> None:
    price_id = fake_stripe.add_price(unit_amount=5000)
    shop_settings = stripe_settings(settings, fake_stripe, stripe_price_ids={"pro": price_id})
    for shop in open_shop(shop_settings, sqlite_url, fake_stripe):
        _, headers = shop.new_user()
        session_id = shop.checkout(headers, "pro")
        assert shop.stripe.requests[-1][2]["line_items"] == [{"price": price_id, "quantity": "1"}]
        shop.stripe.pay(session_id)
        assert shop.client.get(f"/api/billing/sessions/{session_id}", headers=headers).json()["credits_granted"]
        assert shop.balance(headers) == 50


def test_unknown_pack_is_refused(shop: Shop) -> None:
    _, headers = shop.new_user()
    response = shop.client.post("/api/billing/checkout", json={"pack": "unlimited"}, headers=headers)
    assert response.status_code == 422
    assert "unknown pack" in response.json()["detail"]


def test_a_failing_billing_assertion_does_not_print_the_bearer_token(shop: Shop) -> None:
    _, headers = shop.new_user()
    token = headers["Authorization"].removeprefix("Bearer ")
    assert token not in repr(headers) and token not in str(headers)
    assert shop.balance(headers) == 0  # the headers still authenticate


def test_checkout_needs_sign_in(shop: Shop) -> None:
    assert shop.client.post("/api/billing/checkout", json={"pack": "starter"}).status_code == 401


def test_stripe_outage_at_checkout_is_a_clear_502(shop: Shop) -> None:
    _, headers = shop.new_user()
    shop.stripe.failures_left = 1
    response = shop.client.post("/api/billing/checkout", json={"pack": "starter"}, headers=headers)
    assert response.status_code == 502
    assert "payment service" in response.json()["detail"]


def test_success_page_grants_a_paid_checkout_once(shop: Shop) -> None:
    _, headers = shop.new_user()
    session_id = shop.checkout(headers, "starter")
    shop.stripe.pay(session_id)
    first = shop.client.get(f"/api/billing/sessions/{session_id}", headers=headers)
    again = shop.client.get(f"/api/billing/sessions/{session_id}", headers=headers)
    assert first.status_code == again.status_code == 200
    assert first.json()["credits_granted"] and first.json()["status"] == "paid"
    assert again.json()["balance"] == {"balance": 10, "reserved": 0, "available": 10}
    assert [(e["kind"], e["ref"], e["delta"]) for e in shop.ledger(headers)] == [("purchase", session_id, 10)]


def test_success_page_before_payment_grants_nothing(shop: Shop) -> None:
    _, headers = shop.new_user()
    session_id = shop.checkout(headers, "starter")
    view = shop.client.get(f"/api/billing/sessions/{session_id}", headers=headers).json()
    assert (view["status"], view["credits_granted"], view["balance"]["balance"]) == ("open", False, 0)


def test_another_users_checkout_is_not_found(shop: Shop) -> None:
    _, buyer = shop.new_user()
    _, other = shop.new_user()
    session_id = shop.checkout(buyer, "starter")
    shop.stripe.pay(session_id)
    assert shop.client.get(f"/api/billing/sessions/{session_id}", headers=other).status_code == 404
    assert shop.balance(buyer) == 0 and shop.balance(other) == 0


@pytest.mark.parametrize(
    "path",
    [
        "/api/billing/ledger?before=9223372036854775807",
        "/api/billing/ledger?before=-100000000000000000000000000000",
        "/api/billing/sessions/cs_test_a%00b",
        "/api/billing/local-checkout/cs_local_a%00b",
    ],
    ids=["huge-before", "huge-negative-before", "nul-session", "nul-local-session"],
)
def test_malformed_billing_urls_are_refused_with_4xx_not_500(shop: Shop, path: str) -> None:
    _, headers = shop.new_user()
    lenient = TestClient(shop.client.app, raise_server_exceptions=False)
    response = lenient.get(path, headers=headers)
    assert 400 <= response.status_code < 500, (response.status_code, response.text)
    assert "detail" in response.json()


def test_ledger_pages_newest_first(shop: Shop) -> None:
    user, headers = shop.new_user()
    with shop.context.session() as session:
        for n in range(5):
            apply_ledger_entry(session=session, user_id=user.id, delta=n + 1, kind="adjustment", ref=f"adj-{user.id}-{n}")
        session.commit()
    first = shop.client.get("/api/billing/ledger", params={"limit": 3}, headers=headers).json()
    assert [e["delta"] for e in first["entries"]] == [5, 4, 3]
    rest = shop.client.get("/api/billing/ledger", params={"limit": 3, "before": first["next_before"]}, headers=headers)
    assert [e["delta"] for e in rest.json()["entries"]] == [2, 1]
    assert rest.json()["next_before"] is None
    _, stranger = shop.new_user()
    assert shop.ledger(stranger) == []


def test_local_checkout_page_is_not_served_under_stripe(shop: Shop) -> None:
    _, headers = shop.new_user()
    session_id = shop.checkout(headers, "starter")
    assert shop.client.get(f"/api/billing/local-checkout/{session_id}").status_code == 404
    assert shop.client.post(f"/api/billing/local-checkout/{session_id}/pay").status_code == 404
    assert shop.balance(headers) == 0


# --- the local provider (embedded default: no STRIPE_SECRET_KEY) ---

@pytest.fixture
def local_client(context: AppContext) -> Iterator[TestClient]:
    with TestClient(create_api(context)) as test_client:
        yield test_client


def test_buying_through_the_local_checkout_page_grants_once(context: AppContext, local_client: TestClient) -> None:
    _, headers = make_user(context)
    started = local_client.post("/api/billing/checkout", json={"pack": "starter"}, headers=headers)
    assert started.status_code == 200, started.text
    session_id, url = started.json()["session_id"], started.json()["url"]
    assert url == f"http://testserver/api/billing/local-checkout/{session_id}"

    page = local_client.get(url)
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    assert "Starter pack" in page.text and "Pay $12.00" in page.text
    assert local_client.get("/api/me", headers=headers).json()["credits"]["balance"] == 0

    paid = local_client.post(f"/api/billing/local-checkout/{session_id}/pay", follow_redirects=False)
    assert paid.status_code == 303
    assert paid.headers["location"] == f"http://testserver/billing/success?session_id={session_id}"
    again = local_client.post(f"/api/billing/local-checkout/{session_id}/pay", follow_redirects=False)
    assert again.status_code == 303

    view = local_client.get(f"/api/billing/sessions/{session_id}", headers=headers).json()
    assert view["credits_granted"] and view["balance"]["balance"] == 10
    paid_page = local_client.get(url).text
    assert "credits are in your account" in paid_page and "<form" not in paid_page
    ledger = local_client.get("/api/billing/ledger", headers=headers).json()["entries"]
    assert [(e["kind"], e["ref"], e["delta"]) for e in ledger] == [("purchase", session_id, 10)]


def test_unknown_local_checkout_is_not_found(local_client: TestClient) -> None:
    assert local_client.get("/api/billing/local-checkout/cs_local_nope").status_code == 404
    assert local_client.post("/api/billing/local-checkout/cs_local_nope/pay").status_code == 404


def test_local_provider_takes_no_webhooks(local_client: TestClient) -> None:
    response = local_client.post("/api/webhooks/stripe", content=b"{}", headers={"Stripe-Signature": "t=1,v1=00"})
    assert response.status_code == 400
    assert "STRIPE_SECRET_KEY" in response.json()["detail"]


def test_local_provider_refuses_production(settings: Settings, sqlite_url: str) -> None:
    production = settings.model_copy(update={"luster_env": "production"})
    context = AppContext(production, db=make_engine(sqlite_url))
    with pytest.raises(RuntimeError, match="STRIPE_SECRET_KEY"):
        _ = context.payments
    context.db.dispose()


@pytest.mark.parametrize("webhook_secret", ["", "changeme", "secret"])
def test_production_stripe_refuses_a_missing_or_placeholder_webhook_secret(
    settings: Settings, sqlite_url: str, fake_stripe: FakeStripe, webhook_secret: str
) -> None:
    # Anyone who guesses the secret can sign webhook events, and events move credits.
    production = stripe_settings(settings, fake_stripe, luster_env="production", stripe_webhook_secret=webhook_secret)
    context = AppContext(production, db=make_engine(sqlite_url))
    with pytest.raises(RuntimeError, match="STRIPE_WEBHOOK_SECRET"):
        _ = context.payments
    context.db.dispose()


def test_production_stripe_starts_with_a_real_webhook_secret(settings: Settings, sqlite_url: str, fake_stripe: FakeStripe) -> None:
    production = stripe_settings(settings, fake_stripe, luster_env="production")
    context = AppContext(production, db=make_engine(sqlite_url))
    assert context.payments.name == "stripe"
    context.db.dispose()


def test_the_history_shows_what_each_purchase_cost(shop: Shop) -> None:
    _, headers = shop.new_user()
    paid_at_stripe = []
    for pack in ("starter", "pro"):
        session_id = shop.checkout(headers, pack)
        session = shop.stripe.pay(session_id)
        paid_at_stripe.append((session["amount_total"], session["currency"]))
        assert shop.client.get(f"/api/billing/sessions/{session_id}", headers=headers).json()["credits_granted"]
    purchases = [e for e in shop.ledger(headers) if e["kind"] == "purchase"]
    # Newest first: the Pro pack, then the Starter pack, each with what Stripe charged.
    assert [(e["delta"], e["amount_total"], e["currency"], e["amount_display"]) for e in purchases] == [
        (50, 5000, "usd", "$50.00"), (10, 1200, "usd", "$12.00")]
    assert [(e["amount_total"], e["currency"]) for e in reversed(purchases)] == paid_at_stripe
