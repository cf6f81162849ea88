"""Concurrent deliveries on PostgreSQL: duplicates at the same moment, the success page racing the
webhook, and a shuffled storm of redelivered events that must leave the ledger exact."""

from __future__ import annotations

import random
import threading
import uuid
from collections import Counter, defaultdict
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import httpx
import pytest
from sqlalchemy import func, select

from luster_app.billing import PACKS
from luster_app.models import CheckoutSession, CreditLedger, StripeEvent
from tests.billing_support import Shop, fake_stripe, pg_shop  # noqa: F401  (fixtures)

# Stripe's API answers slowly enough here that both requests are inside their transactions together.
SLOW_STRIPE_SECONDS = 0.3


def at_once(*calls: Callable[[], httpx.Response]) -> list[httpx.Response]:
    """Run the calls in threads released by one barrier."""
    barrier = threading.Barrier(len(calls))

    def run(call: Callable[[], httpx.Response]) -> httpx.Response:
        barrier.wait()
        return call()

    with ThreadPoolExecutor(len(calls)) as pool:
        return [future.result() for future in [pool.submit(run, call) for call in calls]]


def test_the_same_event_delivered_twice_at_the_same_moment_grants_once(pg_shop: Shop) -> None:
    pg_shop.stripe.latency_seconds = SLOW_STRIPE_SECONDS
    for _ in range(3):
        _, headers = pg_shop.new_user()
        session_id = pg_shop.checkout(headers, "starter")
        event = pg_shop.stripe.event("checkout.session.completed", pg_shop.stripe.pay(session_id))
        responses = at_once(lambda: pg_shop.deliver(event), lambda: pg_shop.deliver(event))
        assert [r.status_code for r in responses] == [200, 200]
        assert sorted(r.json()["outcome"] for r in responses) == ["duplicate: already handled", "granted 10 credits"]
        assert pg_shop.balance(headers) == 10
        assert [(e["kind"], e["delta"]) for e in pg_shop.ledger(headers)] == [("purchase", 10)]


def test_the_success_page_and_the_webhook_at_the_same_moment_grant_once(pg_shop: Shop) -> None:
    pg_shop.stripe.latency_seconds = SLOW_STRIPE_SECONDS
    for _ in range(3):
        _, headers = pg_shop.new_user()
        session_id = pg_shop.checkout(headers, "pro")
        event = pg_shop.stripe.event("checkout.session.completed", pg_shop.stripe.pay(session_id))
        page, webhook = at_once(
            lambda: pg_shop.client.get(f"/api/billing/sessions/{session_id}", headers=headers),
            lambda: pg_shop.deliver(event),
        )
        assert page.status_code == webhook.status_code == 200
        assert page.json()["credits_granted"] and page.json()["balance"]["balance"] == 50
        assert pg_shop.balance(headers) == 50
        assert [(e["kind"], e["delta"]) for e in pg_shop.ledger(headers)] == [("purchase", 50)]


def test_refund_events_of_one_charge_at_the_same_moment_claw_back_exactly(pg_shop: Shop) -> None:
    for _ in range(8):
        _, headers = pg_shop.new_user()
        session_id = pg_shop.checkout(headers, "starter")  # 10 credits for $12.00
        pg_shop.deliver_ok(pg_shop.stripe.event("checkout.session.completed", pg_shop.stripe.pay(session_id)))
        pg_shop.stripe.refund(session_id, 700)
        first = pg_shop.stripe.event("charge.refunded", pg_shop.stripe.charge(session_id))
        pg_shop.stripe.refund(session_id, 500)
        second = pg_shop.stripe.event("charge.refunded", pg_shop.stripe.charge(session_id))
        responses = at_once(lambda: pg_shop.deliver(first), lambda: pg_shop.deliver(second))
        assert [r.status_code for r in responses] == [200, 200]
        assert pg_shop.balance(headers) == 0  # all $12.00 refunded: exactly the 10 credits, not more
        # Both events see both refunds at Stripe; whichever settles first takes all ten.
        assert [e["delta"] for e in pg_shop.ledger(headers) if e["kind"] == "refund"] == [-10]


class Storm:
    """Many purchases and what happened to each at Stripe, as events, with the balance each user must end with."""

    def __init__(self, shop: Shop, *, purchases: int, users: int) -> None:
        self.shop = shop
        self.users = [shop.new_user() for _ in range(users)]
        self.expected: dict[uuid.UUID, int] = defaultdict(int)
        self.events: list[dict[str, Any]] = []
        self.failed_sessions: list[str] = []
        for n in range(purchases):
            user, headers = self.users[n % users]
            pack = PACKS[n % len(PACKS)]
            self.expected[user.id] += self._story(n, self.shop.checkout(headers, pack.id), pack.credits, pack.price)

    def _story(self, n: int, session_id: str, credits: int, price: int) -> int:
        """Play one purchase's story at Stripe; the credits it must leave the buyer."""
        fake, event = self.shop.stripe, self.shop.stripe.event
        story = n % 5
        if story == 1:  # bank debit: completes unpaid, succeeds later
            unpaid = fake.pay(session_id, payment_status="unpaid")
            self.events += [event("checkout.session.completed", unpaid),
                            event("checkout.session.async_payment_succeeded", fake.pay(session_id))]
            return credits
        if story == 2:  # bank debit that fails
            unpaid = fake.pay(session_id, payment_status="unpaid")
            self.events += [event("checkout.session.completed", unpaid),
                            event("checkout.session.async_payment_failed", unpaid)]
            self.failed_sessions.append(session_id)
            return 0
        self.events.append(event("checkout.session.completed", fake.pay(session_id)))
        if story == 3:  # two partial refunds of a quarter each
            for _ in range(2):
                fake.refund(session_id, price // 4)
                self.events.append(event("charge.refunded", fake.charge(session_id, embed_refunds=n % 2 == 0)))
            return credits - credits // 2
        if story == 4:  # a dispute, won for every other one
            dispute = fake.dispute(session_id)
            won = n % 10 == 4
            self.events += [event("charge.dispute.created", dispute),
                            event("charge.dispute.closed", fake.close_dispute(dispute["id"], "won" if won else "lost"))]
            return credits if won else 0
        return credits


@pytest.mark.slow
def test_a_shuffled_storm_of_500_redelivered_events_leaves_the_ledger_exact(pg_shop: Shop) -> None:
    storm = Storm(pg_shop, purchases=120, users=6)
    rng = random.Random(20240607)
    deliveries = storm.events + rng.choices(storm.events, k=500 - len(storm.events))
    rng.shuffle(deliveries)
    assert len(deliveries) == 500 and len(storm.events) < 300

    def deliver_until_accepted(event: dict[str, Any]) -> int:
        # Like Stripe: a non-2xx answer (a deadlock victim, say) is delivered again.
        for attempt in range(1, 6):
            if pg_shop.deliver(event).status_code == 200:
                return attempt
        raise AssertionError(f"event {event['type']} never accepted")

    with ThreadPoolExecutor(8) as pool:
        attempts = list(pool.map(deliver_until_accepted, deliveries))
    assert len(attempts) == 500

    for user, headers in storm.users:
        assert pg_shop.balance(headers) == storm.expected[user.id], user.email
        assert sum(e["delta"] for e in pg_shop.ledger(headers)) == storm.expected[user.id]
    with pg_shop.context.session() as session:
        kinds = Counter(session.execute(select(CreditLedger.kind)).scalars())
        assert kinds["purchase"] == 96  # every purchase except the 24 failed bank debits
        # Every story has played out at Stripe before its events arrive: the first event of a
        # purchase settles it (both refunds at once, a won dispute with no claw-back at all).
        assert kinds["refund"] == 24 and kinds["dispute"] == 12 and kinds["dispute_won"] == 0
        assert session.execute(select(func.count()).select_from(StripeEvent)).scalar_one() == len(storm.events)
        failed = session.execute(select(CheckoutSession.status).where(CheckoutSession.id.in_(storm.failed_sessions)))
        assert set(failed.scalars()) == {"failed"}
