"""Stripe webhooks: signatures, exactly-once grants, async payments, refunds and disputes."""

from __future__ import annotations

import json
import time

import pytest
import stripe
from sqlalchemy import select

from luster_app.models import CreditLedger, StripeEvent
from luster_app.services.credits import apply_ledger_entry, grant_adjustment
from tests.billing_support import Shop, fake_stripe, shop  # noqa: F401  (fixtures)

TEN_MINUTES = 600


def _paid_purchase(shop: Shop, pack: str = "starter") -> tuple[str, dict[str, str], object]:
    """A user who bought `pack`, paid at Stripe, and got the credits through the webhook."""
    user, headers = shop.new_user()
    session_id = shop.checkout(headers, pack)
    shop.deliver_ok(shop.stripe.event("checkout.session.completed", shop.stripe.pay(session_id)))
    return session_id, headers, user


def test_a_valid_completed_event_grants_once(shop: Shop) -> None:
    _, headers = shop.new_user()
    session_id = shop.checkout(headers, "pro")
    event = shop.stripe.event("checkout.session.completed", shop.stripe.pay(session_id))
    assert shop.deliver_ok(event)["outcome"] == "granted 50 credits"
    assert shop.deliver_ok(event)["outcome"].startswith("duplicate")
    assert shop.balance(headers) == 50
    assert [(e["kind"], e["ref"], e["delta"]) for e in shop.ledger(headers)] == [("purchase", session_id, 50)]
    with shop.context.session() as session:
        recorded = session.get(StripeEvent, event["id"])
    assert recorded.type == "checkout.session.completed" and recorded.processed_at is not None
    assert recorded.outcome == "granted 50 credits"


def test_the_pack_granted_is_the_one_sold_not_the_sessions_metadata(shop: Shop) -> None:
    _, headers = shop.new_user()
    session_id = shop.checkout(headers, "starter")
    # Metadata stays editable at Stripe after checkout (dashboard, API); what was sold for $12.00 is ours to say.
    shop.stripe.sessions[session_id]["metadata"]["pack"] = "studio"
    assert shop.deliver_ok(shop.stripe.event("checkout.session.completed", shop.stripe.pay(session_id)))["outcome"] == (
        "granted 10 credits"
    )
    assert shop.balance(headers) == 10


def test_a_reserialised_body_is_rejected(shop: Shop) -> None:
    _, headers = shop.new_user()
    session_id = shop.checkout(headers)
    event = shop.stripe.event("checkout.session.completed", shop.stripe.pay(session_id))
    reserialised = json.dumps(event).encode()  # same JSON, different bytes than were signed
    response = shop.deliver(event, body=reserialised)
    assert response.status_code == 400
    assert "signature" in response.json()["detail"]
    assert shop.balance(headers) == 0


@pytest.mark.parametrize("offset", [-TEN_MINUTES, TEN_MINUTES], ids=["10-min-old", "10-min-ahead"])
def test_a_timestamp_ten_minutes_off_is_rejected(shop: Shop, offset: int) -> None:
    _, headers = shop.new_user()
    session_id = shop.checkout(headers)
    event = shop.stripe.event("checkout.session.completed", shop.stripe.pay(session_id))
    response = shop.deliver(event, timestamp=int(time.time()) + offset)
    assert response.status_code == 400
    assert shop.balance(headers) == 0
    assert shop.deliver(event).status_code == 200  # the same event, freshly signed, is fine
    assert shop.balance(headers) == 10


def test_a_missing_or_foreign_signature_is_rejected(shop: Shop) -> None:
    _, headers = shop.new_user()
    session_id = shop.checkout(headers)
    body, _ = shop.stripe.sign(shop.stripe.event("checkout.session.completed", shop.stripe.pay(session_id)))
    assert shop.client.post("/api/webhooks/stripe", content=body).status_code == 400
    forged = {"Stripe-Signature": f"t={int(time.time())},v1={'0' * 64}"}
    assert shop.client.post("/api/webhooks/stripe", content=body, headers=forged).status_code == 400
    assert shop.balance(headers) == 0


@pytest.mark.parametrize("async_first", [False, True], ids=["completed-first", "succeeded-first"])
def test_unpaid_completion_grants_nothing_until_the_async_payment_succeeds(shop: Shop, async_first: bool) -> None:
    _, headers = shop.new_user()
    session_id = shop.checkout(headers, "starter")
    completed = shop.stripe.event("checkout.session.completed", shop.stripe.pay(session_id, payment_status="unpaid"))
    if not async_first:
        shop.deliver_ok(completed)
        view = shop.client.get(f"/api/billing/sessions/{session_id}", headers=headers).json()
        assert (view["status"], view["credits_granted"], view["balance"]["balance"]) == ("processing", False, 0)
        assert "processing" in view["status_reason"]
    succeeded = shop.stripe.event("checkout.session.async_payment_succeeded", shop.stripe.pay(session_id))
    shop.deliver_ok(succeeded)
    shop.deliver_ok(completed)  # late or redelivered `completed`, still saying unpaid
    shop.deliver_ok(succeeded)
    assert shop.balance(headers) == 10
    assert len(shop.ledger(headers)) == 1
    assert shop.client.get(f"/api/billing/sessions/{session_id}", headers=headers).json()["status"] == "paid"


def test_a_failed_async_payment_grants_nothing_and_says_why(shop: Shop) -> None:
    _, headers = shop.new_user()
    session_id = shop.checkout(headers)
    unpaid = shop.stripe.pay(session_id, payment_status="unpaid")
    shop.deliver_ok(shop.stripe.event("checkout.session.async_payment_failed", unpaid))
    shop.deliver_ok(shop.stripe.event("checkout.session.completed", unpaid))  # arriving late changes nothing
    view = shop.client.get(f"/api/billing/sessions/{session_id}", headers=headers).json()
    assert (view["status"], view["credits_granted"], view["balance"]["balance"]) == ("failed", False, 0)
    assert "did not go through" in view["status_reason"]


def test_an_expired_checkout_says_so_and_grants_nothing(shop: Shop) -> None:
    _, headers = shop.new_user()
    session_id = shop.checkout(headers)
    shop.deliver_ok(shop.stripe.event("checkout.session.expired", shop.stripe.expire(session_id)))
    view = shop.client.get(f"/api/billing/sessions/{session_id}", headers=headers).json()
    assert (view["status"], view["credits_granted"], view["balance"]["balance"]) == ("expired", False, 0)
    assert "expired" in view["status_reason"]


def _claw_backs(shop: Shop, headers: dict[str, str]) -> list[tuple[str, int]]:
    """The ledger's refund and dispute rows, oldest first, as (kind, delta)."""
    return [(e["kind"], e["delta"]) for e in reversed(shop.ledger(headers)) if e["kind"] != "purchase"]


@pytest.mark.parametrize("embed_refunds", [True, False], ids=["refunds-in-event", "refunds-not-in-event"])
def test_two_partial_refunds_each_delivered_twice_claw_back_exactly(shop: Shop, embed_refunds: bool) -> None:
    session_id, headers, _ = _paid_purchase(shop, "pro")  # 50 credits for $50.00
    shop.stripe.refund(session_id, 1000)
    first = shop.stripe.event("charge.refunded", shop.stripe.charge(session_id, embed_refunds=embed_refunds))
    shop.deliver_ok(first)
    shop.deliver_ok(first)
    assert shop.balance(headers) == 40
    shop.stripe.refund(session_id, 1500)
    second = shop.stripe.event("charge.refunded", shop.stripe.charge(session_id, embed_refunds=embed_refunds))
    shop.deliver_ok(second)
    shop.deliver_ok(second)
    shop.deliver_ok(first)
    assert shop.balance(headers) == 25
    refunds = [(e["delta"], e["note"]) for e in shop.ledger(headers) if e["kind"] == "refund"]
    assert refunds == [(-15, "$25.00 of $50.00 refunded on the Pro pack"), (-10, "$10.00 of $50.00 refunded on the Pro pack")]


def test_a_full_refund_in_three_uneven_parts_claws_back_the_whole_pack(shop: Shop) -> None:
    session_id, headers, _ = _paid_purchase(shop, "starter")  # 10 credits for $12.00
    events = []
    for amount in (400, 400, 400):
        shop.stripe.refund(session_id, amount)
        events.append(shop.stripe.event("charge.refunded", shop.stripe.charge(session_id)))
    for event in reversed(events):
        shop.deliver_ok(event)
    assert shop.balance(headers) == 0
    assert _claw_backs(shop, headers) == [("refund", -10)]  # the first event handled saw all three


def test_refunds_claw_back_by_the_money_returned_so_far(shop: Shop) -> None:
    session_id, headers, _ = _paid_purchase(shop, "starter")  # 10 credits for $12.00
    for amount, balance in ((400, 7), (400, 4), (400, 0)):  # $4.00 is 3.33 credits' worth
        shop.stripe.refund(session_id, amount)
        shop.deliver_ok(shop.stripe.event("charge.refunded", shop.stripe.charge(session_id)))
        assert shop.balance(headers) == balance
    assert _claw_backs(shop, headers) == [("refund", -3), ("refund", -3), ("refund", -4)]


def test_a_refund_that_overtakes_the_purchase_event_still_nets_out(shop: Shop) -> None:
    _, headers = shop.new_user()
    session_id = shop.checkout(headers, "starter")
    completed = shop.stripe.event("checkout.session.completed", shop.stripe.pay(session_id))
    shop.stripe.refund(session_id, 600)
    shop.deliver_ok(shop.stripe.event("charge.refunded", shop.stripe.charge(session_id)))
    shop.deliver_ok(completed)
    assert shop.balance(headers) == 5
    assert sorted((e["kind"], e["delta"]) for e in shop.ledger(headers)) == [("purchase", 10), ("refund", -5)]


def test_a_dispute_lost_then_won_reinstates_once(shop: Shop) -> None:
    session_id, headers, _ = _paid_purchase(shop, "starter")
    dispute = shop.stripe.dispute(session_id)
    created = shop.stripe.event("charge.dispute.created", dispute)
    shop.deliver_ok(created)
    shop.deliver_ok(created)
    assert shop.balance(headers) == 0
    won = shop.stripe.event("charge.dispute.closed", shop.stripe.close_dispute(dispute["id"], "won"))
    shop.deliver_ok(won)
    shop.deliver_ok(won)
    shop.deliver_ok(created)
    assert shop.balance(headers) == 10
    assert _claw_backs(shop, headers) == [("dispute", -10), ("dispute_won", 10)]


def test_a_partial_refund_then_a_lost_dispute_of_the_rest_claws_back_the_whole_pack(shop: Shop) -> None:
    session_id, headers, _ = _paid_purchase(shop, "starter")  # 10 credits for $12.00
    shop.stripe.refund(session_id, 700)
    shop.deliver_ok(shop.stripe.event("charge.refunded", shop.stripe.charge(session_id)))
    assert shop.balance(headers) == 5  # $7.00 back: 5.83 credits' worth, rounded in the buyer's favour
    dispute = shop.stripe.dispute(session_id)  # the remaining $5.00
    shop.deliver_ok(shop.stripe.event("charge.dispute.created", dispute))
    shop.deliver_ok(shop.stripe.event("charge.dispute.closed", shop.stripe.close_dispute(dispute["id"], "lost")))
    assert shop.balance(headers) == 0  # every cent is back with the customer, so every credit is gone


def test_a_partial_refund_then_a_won_dispute_of_the_rest_leaves_what_was_not_refunded(shop: Shop) -> None:
    session_id, headers, _ = _paid_purchase(shop, "starter")  # 10 credits for $12.00
    shop.stripe.refund(session_id, 700)
    shop.deliver_ok(shop.stripe.event("charge.refunded", shop.stripe.charge(session_id)))
    dispute = shop.stripe.dispute(session_id)
    shop.deliver_ok(shop.stripe.event("charge.dispute.created", dispute))
    assert shop.balance(headers) == 0
    won = shop.stripe.event("charge.dispute.closed", shop.stripe.close_dispute(dispute["id"], "won"))
    assert shop.deliver_ok(won)["outcome"] == "dispute: gave back 5 credits (dispute_won)"
    assert shop.balance(headers) == 5  # the bank sided with us: the disputed $5.00 worth comes back


@pytest.mark.parametrize("outcome", ["lost", "won"])
def test_a_dispute_of_money_already_refunded_takes_no_credit_twice(shop: Shop, outcome: str) -> None:
    session_id, headers, _ = _paid_purchase(shop, "starter")  # 10 credits for $12.00
    shop.stripe.refund(session_id, 1200)
    shop.deliver_ok(shop.stripe.event("charge.refunded", shop.stripe.charge(session_id)))
    assert shop.balance(headers) == 0
    # The customer, refunded in full, disputes the whole charge with the bank as well.
    dispute = shop.stripe.dispute(session_id, amount=1200)
    shop.deliver_ok(shop.stripe.event("charge.dispute.created", dispute))
    shop.deliver_ok(shop.stripe.event("charge.dispute.closed", shop.stripe.close_dispute(dispute["id"], outcome)))
    assert shop.balance(headers) == 0  # not -10: the pack's credits went back once, and the refund stands
    assert _claw_backs(shop, headers) == [("refund", -10)]


@pytest.mark.parametrize("refund_first", [False, True], ids=["inquiry-first", "refund-first"])
def test_an_inquiry_settled_by_a_refund_leaves_no_credit(shop: Shop, refund_first: bool) -> None:
    """The usual answer to a bank's inquiry is a refund; then Stripe closes the inquiry in our favour."""
    session_id, headers, _ = _paid_purchase(shop, "starter")
    inquiry = shop.stripe.dispute(session_id, status="warning_needs_response")
    opened = shop.stripe.event("charge.dispute.created", inquiry)
    shop.stripe.refund(session_id, 1200)
    refunded = shop.stripe.event("charge.refunded", shop.stripe.charge(session_id))
    for event in [refunded, opened] if refund_first else [opened, refunded]:
        shop.deliver_ok(event)
    assert shop.balance(headers) == 0
    shop.deliver_ok(shop.stripe.event("charge.dispute.closed", shop.stripe.close_dispute(inquiry["id"], "warning_closed")))
    assert shop.balance(headers) == 0  # the refund, not the closed inquiry, decides


@pytest.mark.parametrize("event_type", ["charge.refund.updated", "refund.failed"])
def test_a_refund_that_fails_gives_its_credits_back_once(shop: Shop, event_type: str) -> None:
    session_id, headers, _ = _paid_purchase(shop, "pro")  # 50 credits for $50.00
    refund = shop.stripe.refund(session_id, 1000)
    refunded = shop.stripe.event("charge.refunded", shop.stripe.charge(session_id))
    shop.deliver_ok(refunded)
    assert shop.balance(headers) == 40
    failed = shop.stripe.event(event_type, shop.stripe.fail_refund(refund["id"]))  # the card was closed
    assert shop.deliver_ok(failed)["outcome"] == "refund: gave back 10 credits (refund_failed)"
    shop.deliver_ok(failed)
    shop.deliver_ok(refunded)
    assert shop.balance(headers) == 50  # the money stayed with us, so the credits stay with the buyer
    shop.stripe.refund(session_id, 1500)
    shop.deliver_ok(shop.stripe.event("charge.refunded", shop.stripe.charge(session_id)))
    assert shop.balance(headers) == 35
    assert [(e["kind"], e["delta"], e["note"]) for e in shop.ledger(headers)][:3] == [
        ("refund", -15, "$15.00 of $50.00 refunded on the Pro pack"),
        ("refund_failed", 10, "A refund on the Pro pack did not go through: credits back"),
        ("refund", -10, "$10.00 of $50.00 refunded on the Pro pack"),
    ]


def test_a_failed_refund_leaves_the_credits_of_the_refunds_that_stand(shop: Shop) -> None:
    session_id, headers, _ = _paid_purchase(shop, "starter")  # 10 credits for $12.00
    first = shop.stripe.refund(session_id, 700)
    shop.stripe.refund(session_id, 500)
    shop.deliver_ok(shop.stripe.event("charge.refunded", shop.stripe.charge(session_id)))
    assert shop.balance(headers) == 0
    shop.deliver_ok(shop.stripe.event("charge.refund.updated", shop.stripe.fail_refund(first["id"], status="canceled")))
    assert shop.balance(headers) == 6  # $5.00 of $12.00 went back: 4.17 credits' worth, rounded for the buyer


def test_a_failed_refund_gives_back_a_credit_a_later_refund_rounded_up_to(shop: Shop) -> None:
    session_id, headers, _ = _paid_purchase(shop, "starter")  # 10 credits for $12.00: $1.20 each
    first = shop.stripe.refund(session_id, 60)
    shop.deliver_ok(shop.stripe.event("charge.refunded", shop.stripe.charge(session_id)))
    shop.stripe.refund(session_id, 60)
    shop.deliver_ok(shop.stripe.event("charge.refunded", shop.stripe.charge(session_id)))
    assert shop.balance(headers) == 9  # $1.20 back in all
    shop.deliver_ok(shop.stripe.event("refund.failed", shop.stripe.fail_refund(first["id"])))
    assert shop.balance(headers) == 10  # $0.60 back: half a credit's worth, rounded for the buyer


def test_a_full_refund_that_fails_after_a_lost_dispute_leaves_no_credit(shop: Shop) -> None:
    session_id, headers, _ = _paid_purchase(shop, "starter")
    refund = shop.stripe.refund(session_id, 1200)
    shop.deliver_ok(shop.stripe.event("charge.refunded", shop.stripe.charge(session_id)))
    dispute = shop.stripe.dispute(session_id, amount=1200)
    shop.deliver_ok(shop.stripe.event("charge.dispute.created", dispute))
    shop.deliver_ok(shop.stripe.event("charge.dispute.closed", shop.stripe.close_dispute(dispute["id"], "lost")))
    shop.deliver_ok(shop.stripe.event("refund.failed", shop.stripe.fail_refund(refund["id"])))
    assert shop.balance(headers) == 0  # the bank took the money back through the dispute


def test_each_row_names_what_moved_the_credits_whatever_event_brought_the_news(shop: Shop) -> None:
    session_id, headers, _ = _paid_purchase(shop, "starter")  # 10 credits for $12.00
    refund = shop.stripe.refund(session_id, 1200)
    shop.deliver_ok(shop.stripe.event("charge.refunded", shop.stripe.charge(session_id)))
    shop.stripe.fail_refund(refund["id"])  # the refund bounces; its own event is still on the way
    dispute = shop.stripe.dispute(session_id, amount=600)
    shop.deliver_ok(shop.stripe.event("charge.dispute.created", dispute))
    assert shop.balance(headers) == 5  # half the money went back, through the bank
    assert sorted(_claw_backs(shop, headers)) == [("dispute", -5), ("refund", -10), ("refund_failed", 10)]


def test_a_refund_event_that_arrives_after_the_refund_failed_takes_nothing(shop: Shop) -> None:
    session_id, headers, _ = _paid_purchase(shop, "pro")
    refund = shop.stripe.refund(session_id, 1000)
    stale = shop.stripe.event("charge.refunded", shop.stripe.charge(session_id))  # lists it as succeeded
    shop.deliver_ok(shop.stripe.event("charge.refund.updated", shop.stripe.fail_refund(refund["id"])))
    shop.deliver_ok(stale)
    assert shop.balance(headers) == 50


def test_a_won_dispute_arriving_before_its_creation_changes_nothing(shop: Shop) -> None:
    session_id, headers, _ = _paid_purchase(shop, "starter")
    dispute = shop.stripe.dispute(session_id)
    created = shop.stripe.event("charge.dispute.created", dispute)
    shop.deliver_ok(shop.stripe.event("charge.dispute.closed", shop.stripe.close_dispute(dispute["id"], "won")))
    shop.deliver_ok(created)
    assert shop.balance(headers) == 10
    assert _claw_backs(shop, headers) == []


def test_a_lost_dispute_keeps_the_credits_clawed_back(shop: Shop) -> None:
    session_id, headers, _ = _paid_purchase(shop, "starter")
    dispute = shop.stripe.dispute(session_id)
    shop.deliver_ok(shop.stripe.event("charge.dispute.created", dispute))
    shop.deliver_ok(shop.stripe.event("charge.dispute.closed", shop.stripe.close_dispute(dispute["id"], "lost")))
    assert shop.balance(headers) == 0


def test_a_claw_back_takes_only_what_the_balance_holds_and_gives_back_only_what_it_took(shop: Shop) -> None:
    session_id, headers, user = _paid_purchase(shop, "starter")
    with shop.context.session() as session:
        for n in range(8):  # eight outputs already made and paid for with the credits
            apply_ledger_entry(session=session, user_id=user.id, delta=-1, kind="job", ref=f"job-{user.id}-{n}")
        session.commit()
    dispute = shop.stripe.dispute(session_id)
    outcome = shop.deliver_ok(shop.stripe.event("charge.dispute.created", dispute))["outcome"]
    assert outcome == "dispute: took 2 credits (dispute), 8 credits owed: the balance could not cover them"
    me = shop.client.get("/api/me", headers=headers).json()
    assert me["credits"]["balance"] == 0 and me["credits"]["available"] == 0
    with shop.context.session() as session:
        grant_adjustment(session=session, user_id=user.id, delta=5, reason="goodwill")
    shop.deliver_ok(shop.stripe.event("charge.dispute.updated", dispute))  # a later event takes what is owed
    assert shop.balance(headers) == 0
    shop.deliver_ok(shop.stripe.event("charge.dispute.closed", shop.stripe.close_dispute(dispute["id"], "won")))
    assert shop.balance(headers) == 7  # the 2 + 5 taken come back, not the 10 the dispute was worth


def test_a_handler_error_answers_non_2xx_and_the_redelivery_grants(shop: Shop) -> None:
    _, headers = shop.new_user()
    session_id = shop.checkout(headers, "starter")
    event = shop.stripe.event("checkout.session.completed", shop.stripe.pay(session_id))
    shop.stripe.failures_left = 1  # Stripe's API fails while we fetch the session
    response = shop.deliver(event)
    assert response.status_code == 500
    assert "deliver it again" in response.json()["detail"]
    with shop.context.session() as session:
        assert session.get(StripeEvent, event["id"]) is None  # rolled back: the retry is not a duplicate
    assert shop.balance(headers) == 0
    assert shop.deliver_ok(event)["outcome"] == "granted 10 credits"
    assert shop.balance(headers) == 10


def test_events_luster_does_not_own_are_acknowledged_and_ignored(shop: Shop) -> None:
    # Another integration on the same Stripe account sells something else.
    other_shop = stripe.StripeClient(shop.stripe.api_key, base_addresses={"api": shop.stripe.url})
    foreign = other_shop.v1.checkout.sessions.create(params={
        "mode": "payment", "success_url": "https://example.com/thanks",
        "line_items": [{"price_data": {"currency": "usd", "unit_amount": 900, "product_data": {"name": "Mug"}},
                        "quantity": 1}],
    })
    completed = shop.stripe.event("checkout.session.completed", shop.stripe.pay(foreign.id))
    assert shop.deliver_ok(completed)["outcome"] == "ignored: not a Luster checkout"
    assert shop.deliver_ok(completed)["outcome"].startswith("duplicate")
    other = shop.stripe.event("customer.created", {"id": "cus_1", "object": "customer"})
    assert shop.deliver_ok(other)["outcome"].startswith("ignored")
    with shop.context.session() as session:
        assert len(list(session.execute(select(StripeEvent)).scalars())) == 2
        assert list(session.execute(select(CreditLedger)).scalars()) == []
