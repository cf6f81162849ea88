"""Billing under hostile or unlucky conditions: concurrent redeliveries, a pack that left the list,
Stripe answering slowly while the database waits, checkout floods and oversized webhook bodies."""

from __future__ import annotations

import logging
import threading
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest
from sqlalchemy import create_engine, text

from luster_app.billing import packs
from luster_app.models import StripeEvent
from tests.billing_support import Shop, fake_stripe, pg_shop, shop  # noqa: F401  (fixtures)


@pytest.mark.parametrize("latency", [0.0, 0.2])
def test_five_concurrent_deliveries_of_one_event_all_succeed_and_grant_once(
    shop: Shop, caplog: pytest.LogCaptureFixture, latency: float
) -> None:
    shop.stripe.latency_seconds = latency  # 0.2 s: every delivery is inside its handling at once
    _, headers = shop.new_user()
    session_id = shop.checkout(headers, "starter")
    event = shop.stripe.event("checkout.session.completed", shop.stripe.pay(session_id))
    barrier = threading.Barrier(5)

    def deliver() -> Any:
        barrier.wait()
        return shop.deliver(event)

    with caplog.at_level(logging.ERROR), ThreadPoolExecutor(5) as pool:
        responses = list(pool.map(lambda _: deliver(), range(5)))
    assert [r.status_code for r in responses] == [200] * 5, [r.text for r in responses]
    outcomes = sorted(r.json()["outcome"] for r in responses)
    assert outcomes == ["duplicate: already handled"] * 4 + ["granted 10 credits"]
    assert shop.balance(headers) == 10
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR]


def test_a_failing_event_answers_500_and_logs_its_traceback(shop: Shop, caplog: pytest.LogCaptureFixture) -> None:
    _, headers = shop.new_user()
    session_id = shop.checkout(headers, "starter")
    event = shop.stripe.event("checkout.session.completed", shop.stripe.pay(session_id))
    shop.stripe.failures_left = 10
    with caplog.at_level(logging.ERROR):
        response = shop.deliver(event)
    assert response.status_code == 500
    logged = [r for r in caplog.records if r.levelno >= logging.ERROR and r.exc_info]
    assert logged and event["id"] in logged[0].getMessage()
    shop.stripe.failures_left = 0
    assert shop.deliver_ok(event)["outcome"] == "granted 10 credits"  # the redelivery grants


def test_a_paid_checkout_whose_pack_left_the_list_is_granted_what_was_sold(
    shop: Shop, monkeypatch: pytest.MonkeyPatch
) -> None:
    _, headers = shop.new_user()
    session_id = shop.checkout(headers, "pro")
    # The pack is renamed (new id) after the customer opened checkout, before they paid.
    renamed = tuple(packs.Pack(id="pro-2027", name="Pro", credits=60, price=6000) if p.id == "pro" else p for p in packs.PACKS)
    monkeypatch.setattr(packs, "PACKS", renamed)
    outcome = shop.deliver_ok(shop.stripe.event("checkout.session.completed", shop.stripe.pay(session_id)))
    assert outcome["outcome"] == "granted 50 credits"
    assert shop.balance(headers) == 50
    page = shop.client.get(f"/api/billing/sessions/{session_id}", headers=headers).json()
    assert page["credits_granted"] and page["credits"] == 50


def test_no_database_transaction_is_open_while_stripe_answers(pg_shop: Shop) -> None:
    """Every Stripe call of fulfilment, refunds and disputes: meanwhile the app holds no open
    transaction, and another connection can lock the buyer's credits and checkout rows at once."""
    user, headers = pg_shop.new_user()
    session_id, second = pg_shop.checkout(headers, "starter"), pg_shop.checkout(headers, "starter")
    watcher = create_engine(pg_shop.context.db.url, poolclass=None)
    seen: list[tuple[str, str, int, bool]] = []

    def look(method: str, path: str) -> None:
        with watcher.connect() as conn:
            open_tx = conn.execute(text(
                "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() AND pid <> pg_backend_pid()"
                " AND state LIKE 'idle in transaction%'"
            )).scalar_one()
            conn.execute(text("SET lock_timeout = '50ms'"))
            try:
                conn.execute(text("SELECT 1 FROM credits WHERE user_id = :u FOR UPDATE"), {"u": user.id})
                conn.execute(text("SELECT 1 FROM checkout_sessions WHERE id = :s FOR UPDATE"), {"s": session_id})
                lockable = True
            except Exception:  # noqa: BLE001  (a lock timeout: the app holds the row)
                lockable = False
            conn.rollback()
        seen.append((method, path, open_tx, lockable))

    pg_shop.stripe.on_request = look
    try:
        pg_shop.deliver_ok(pg_shop.stripe.event("checkout.session.completed", pg_shop.stripe.pay(session_id)))
        pg_shop.stripe.refund(session_id, 600)
        pg_shop.deliver_ok(pg_shop.stripe.event("charge.refunded", pg_shop.stripe.charge(session_id)))
        pg_shop.deliver_ok(pg_shop.stripe.event("charge.dispute.created", pg_shop.stripe.dispute(session_id)))
        pg_shop.stripe.pay(second)  # the success page, before the webhook: it asks Stripe and grants
        assert pg_shop.client.get(f"/api/billing/sessions/{second}", headers=headers).json()["credits_granted"]
    finally:
        pg_shop.stripe.on_request = None
        watcher.dispose()
    paths = {path for _, path, _, _ in seen}
    assert {"/v1/refunds", "/v1/disputes", f"/v1/checkout/sessions/{session_id}", f"/v1/checkout/sessions/{second}"} <= paths
    assert [(m, p) for m, p, open_tx, lockable in seen if open_tx or not lockable] == []
    assert pg_shop.balance(headers) == 10  # the first: half refunded, the rest disputed; the second: 10


def test_checkout_creation_is_rate_limited(shop: Shop) -> None:
    _, headers = shop.new_user()
    limit = shop.context.settings.checkouts_per_hour_per_user
    for _ in range(limit):
        shop.checkout(headers, "starter")
    response = shop.client.post("/api/billing/checkout", json={"pack": "starter"}, headers=headers)
    assert response.status_code == 429
    assert "checkout" in response.json()["detail"].lower()
    assert len([r for r in shop.stripe.requests if r[:2] == ("POST", "/v1/checkout/sessions")]) == limit
    _, other = shop.new_user()
    shop.checkout(other, "starter")  # per user: someone else still buys


def test_an_oversized_webhook_body_is_413_and_not_read(shop: Shop) -> None:
    _, headers = shop.new_user()
    event = shop.stripe.event("checkout.session.completed", shop.stripe.pay(shop.checkout(headers)))
    event["padding"] = "x" * (1024 * 1024)
    response = shop.deliver(event)
    assert response.status_code == 413
    assert "too large" in response.json()["detail"]
    with shop.context.session() as session:
        assert session.get(StripeEvent, event["id"]) is None
    chunks = iter([b"{" * 600_000] * 4)  # streamed without a length: the cap still holds
    streamed = shop.client.post("/api/webhooks/stripe", content=chunks, headers={"Stripe-Signature": "t=1,v1=x"})
    assert streamed.status_code == 413
