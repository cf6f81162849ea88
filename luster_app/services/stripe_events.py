"""Stripe webhook events: each id is handled once, in one transaction with the credits it moves.

Refunds, disputes and their outcomes move a purchase's credits to what its charge, as Stripe has
it now, leaves paid for; each change is a ledger row keyed by the event's id, so redeliveries,
reorderings and concurrent duplicates change nothing twice.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Callable
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session

from luster_app.billing import PaymentError, PaymentProvider, find_pack, format_money
from luster_app.models import CheckoutSession, LedgerKind, StripeEvent, utcnow
from luster_app.services.billing import (
    NotOurCheckout,
    PaymentUnavailable,
    fulfil_checkout_session,
    grant_if_paid,
    record_payment_failed,
)
from luster_app.services.credits import apply_ledger_entry

log = logging.getLogger(__name__)

DUPLICATE = "duplicate: already handled"

# (session, payments, the event's object, the event's id) -> what it did
Handler = Callable[[Session, PaymentProvider, dict[str, Any], str], str]


def handle_stripe_event(*, session: Session, payments: PaymentProvider, event: dict[str, Any]) -> str:
    """Apply a verified Stripe event once and commit; returns what it did. Raises to make Stripe retry."""
    event_id, event_type = str(event["id"]), str(event.get("type", ""))
    if session.get(StripeEvent, event_id) is not None:
        return DUPLICATE
    record = StripeEvent(id=event_id, type=event_type, processed_at=utcnow())
    try:
        # A concurrent delivery of the same event waits here until the first one commits.
        with session.begin_nested():
            session.add(record)
            session.flush()
    except IntegrityError:
        session.rollback()
        return DUPLICATE
    handler = HANDLERS.get(event_type)
    try:
        obj = event["data"]["object"]
        outcome = handler(session, payments, obj, event_id) if handler else "ignored: not an event Luster uses"
        record.outcome = outcome[:500]
        session.commit()
    except NotOurCheckout:
        session.rollback()
        return _record_ignored(session, event_id, event_type, "ignored: not a Luster checkout")
    except Exception:
        session.rollback()
        log.exception("Stripe event %s (%s) failed; Stripe will redeliver it", event_id, event_type)
        raise
    return outcome


def _record_ignored(session: Session, event_id: str, event_type: str, outcome: str) -> str:
    try:
        session.add(StripeEvent(id=event_id, type=event_type, processed_at=utcnow(), outcome=outcome))
        session.commit()
    except IntegrityError:
        session.rollback()
        return DUPLICATE
    return outcome


def _on_checkout_event(session: Session, payments: PaymentProvider, obj: dict[str, Any], _event_id: str) -> str:
    # The live session decides, not the event's copy: `completed` may say unpaid after the
    # async payment already succeeded, and then it must not matter which arrives first.
    return fulfil_checkout_session(session=session, payments=payments, session_id=obj["id"]).outcome


def _on_async_payment_failed(session: Session, payments: PaymentProvider, obj: dict[str, Any], _event_id: str) -> str:
    return record_payment_failed(session=session, session_id=obj["id"])


def _purchase_for(session: Session, payments: PaymentProvider, payment_intent_id: str | None) -> CheckoutSession | None:
    """The granted purchase behind a PaymentIntent, fulfilling it first if its own event has not landed yet."""
    if not payment_intent_id:
        return None
    query = select(CheckoutSession).where(
        CheckoutSession.payment_intent_id == payment_intent_id, CheckoutSession.fulfilled_at.is_not(None)
    )
    row = session.execute(query).scalars().first()
    if row is not None:
        return row
    try:
        checkout = payments.find_checkout_by_payment_intent(payment_intent_id)
    except PaymentError as exc:
        raise PaymentUnavailable(str(exc)) from exc
    if checkout is None or not grant_if_paid(session=session, checkout=checkout).status == "paid":
        return None
    return session.get(CheckoutSession, checkout.id, populate_existing=True)


def _id_of(value: Any) -> str | None:
    return value.get("id") if isinstance(value, dict) else value or None


def _pack_name(purchase: CheckoutSession) -> str:
    pack = find_pack(purchase.pack_id)
    return pack.name if pack else purchase.pack_id


def _on_charge_refunded(session: Session, payments: PaymentProvider, charge: dict[str, Any], event_id: str) -> str:
    return _settle_claw_backs(session, payments, charge.get("payment_intent"), charge.get("id"), event_id, cause="refund")


def _on_refund_updated(session: Session, payments: PaymentProvider, refund: dict[str, Any], event_id: str) -> str:
    # A refund can fail or be cancelled after `charge.refunded`: the money stays with us.
    return _settle_claw_backs(session, payments, refund.get("payment_intent"), refund.get("charge"), event_id, cause="refund")


def _on_dispute_event(session: Session, payments: PaymentProvider, dispute: dict[str, Any], event_id: str) -> str:
    return _settle_claw_backs(session, payments, dispute.get("payment_intent"), dispute.get("charge"), event_id, cause="dispute")


def _settle_claw_backs(
    session: Session, payments: PaymentProvider, payment_intent: Any, charge: Any, event_id: str, *, cause: str
) -> str:
    """Bring the credits a purchase's refunds and disputes hold back in line with its charge as
    Stripe has it now, recording each change once under this event's id.

    The event only says that something changed: the charge's live refunds and disputes, read
    under the purchase's lock, decide. So events may arrive in any order, late, twice or at
    once; a refund that later fails, a dispute of money already refunded, or an inquiry closed
    after a refund all end with the buyer holding exactly the credits the money left with us
    pays for.
    """
    purchase = _purchase_for(session, payments, _id_of(payment_intent))
    charge_id = _id_of(charge)
    if purchase is None or charge_id is None:
        return f"ignored: no Luster purchase for this {cause}"
    # One settlement of a purchase at a time, each reading Stripe after the one before it committed.
    taken = session.execute(
        select(CheckoutSession.refund_credits_taken, CheckoutSession.dispute_credits_taken)
        .where(CheckoutSession.id == purchase.id)
        .with_for_update()
    ).one()
    try:
        refunds, disputes = payments.list_refunds(charge_id), payments.list_disputes(charge_id)
    except PaymentError as exc:
        raise PaymentUnavailable(str(exc)) from exc
    paid, credits = purchase.amount_total, purchase.credits
    refunded = min(sum(refund.amount for refund in refunds if refund.counts), paid)
    disputed = min(sum(dispute.amount for dispute in disputes if dispute.counts), paid)
    # Refunds round down and disputes up: a dispute of whatever was not refunded then takes
    # exactly the credits the refunds left, so no credit outlives the money going back. A
    # dispute of money already refunded takes nothing more.
    refund_share = credits * refunded // paid if paid else 0
    dispute_share = min(credits - refund_share, -(-credits * disputed // paid) if paid else credits)
    money, pack = functools.partial(format_money, currency=purchase.currency), _pack_name(purchase)
    parts = (
        ("refund_credits_taken", refund_share,
         (LedgerKind.REFUND, f"{money(refunded)} of {money(paid)} refunded on the {pack} pack"),
         (LedgerKind.REFUND_FAILED, f"A refund on the {pack} pack did not go through: credits back")),
        ("dispute_credits_taken", dispute_share,
         (LedgerKind.DISPUTE, f"Payment disputed: {money(disputed)} of the {pack} pack"),
         (LedgerKind.DISPUTE_WON, f"Dispute closed in our favour: the {pack} pack's credits are back")),
    )
    moved = []
    for column, share, take, give in parts:
        change = share - getattr(taken, column)
        if change == 0:
            continue
        kind, note = take if change > 0 else give
        # The event's id is new here (stripe_events holds it once), so its row is too; the
        # check keeps the count from ever moving without its ledger row.
        if apply_ledger_entry(session=session, user_id=purchase.user_id, delta=-change, kind=kind, ref=event_id, note=note):
            session.execute(update(CheckoutSession).where(CheckoutSession.id == purchase.id).values({column: share}))
            moved.append(f"{'took' if change > 0 else 'gave back'} {abs(change)} credits ({kind})")
    return f"{cause}: " + (", ".join(moved) if moved else "credits already settled")


HANDLERS: dict[str, Handler] = {
    "checkout.session.completed": _on_checkout_event,
    "checkout.session.async_payment_succeeded": _on_checkout_event,
    "checkout.session.async_payment_failed": _on_async_payment_failed,
    "checkout.session.expired": _on_checkout_event,
    "charge.refunded": _on_charge_refunded,
    "charge.refund.updated": _on_refund_updated,
    "refund.updated": _on_refund_updated,
    "refund.failed": _on_refund_updated,
    "charge.dispute.created": _on_dispute_event,
    "charge.dispute.updated": _on_dispute_event,
    "charge.dispute.closed": _on_dispute_event,
}
