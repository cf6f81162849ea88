"""Stripe webhook events: each id is handled once, in one transaction with the credits it moves.

Refunds, disputes and their outcomes claw back or reinstate credits through ledger rows keyed
by Stripe's own ids, so redeliveries, reorderings and concurrent duplicates change nothing twice.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session

from luster_app.billing import PaymentError, PaymentProvider, Refund, find_pack, format_money
from luster_app.models import CheckoutSession, CreditLedger, LedgerKind, StripeEvent, utcnow
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
# A dispute that ends in the customer's favour only as an inquiry never took the money.
DISPUTE_REINSTATED_STATUSES = ("won", "warning_closed")

Handler = Callable[[Session, PaymentProvider, dict[str, Any]], str]


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
        outcome = handler(session, payments, obj) if handler else "ignored: not an event Luster uses"
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


def _on_checkout_event(session: Session, payments: PaymentProvider, obj: dict[str, Any]) -> str:
    # The live session decides, not the event's copy: `completed` may say unpaid after the
    # async payment already succeeded, and then it must not matter which arrives first.
    return fulfil_checkout_session(session=session, payments=payments, session_id=obj["id"]).outcome


def _on_async_payment_failed(session: Session, payments: PaymentProvider, obj: dict[str, Any]) -> str:
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


def _lock_purchase(session: Session, purchase: CheckoutSession) -> int:
    """Lock the purchase so its claw-backs run one at a time; returns the credits it has left to take."""
    clawed_back = session.execute(
        select(CheckoutSession.credits_clawed_back).where(CheckoutSession.id == purchase.id).with_for_update()
    ).scalar_one()
    return purchase.credits - clawed_back


def _claw_back(session: Session, purchase: CheckoutSession, *, credits: int, kind: str, ref: str, note: str) -> bool:
    """Take `credits` back from the buyer (negative: give them back) once per (kind, ref), under
    `_lock_purchase`, counting them against the purchase."""
    if not apply_ledger_entry(session=session, user_id=purchase.user_id, delta=-credits, kind=kind, ref=ref, note=note):
        return False
    session.execute(
        update(CheckoutSession)
        .where(CheckoutSession.id == purchase.id)
        .values(credits_clawed_back=CheckoutSession.credits_clawed_back + credits)
    )
    return True


def _on_charge_refunded(session: Session, payments: PaymentProvider, charge: dict[str, Any]) -> str:
    purchase = _purchase_for(session, payments, _id_of(charge.get("payment_intent")))
    if purchase is None:
        return "ignored: no Luster purchase for this charge"
    charged = int(charge.get("amount") or purchase.amount_total)
    # The live list, not the event's copy: a refund may have failed since this event was sent.
    return _settle_refunds(session, purchase, _list_refunds(payments, charge["id"]), charged)


def _on_refund_updated(session: Session, payments: PaymentProvider, refund: dict[str, Any]) -> str:
    # A refund can fail or be cancelled after `charge.refunded`: the money stays with us.
    purchase = _purchase_for(session, payments, _id_of(refund.get("payment_intent")))
    charge_id = _id_of(refund.get("charge"))
    if purchase is None or charge_id is None:
        return "ignored: no Luster purchase for this refund"
    return _settle_refunds(session, purchase, _list_refunds(payments, charge_id), purchase.amount_total)


def _settle_refunds(session: Session, purchase: CheckoutSession, refunds: list[Refund], charged: int) -> str:
    """Bring the purchase's refund claw-backs in line with the charge's refunds: take credits for
    new ones, give back what failed ones took. Each refund id moves credits at most once each way."""
    left = _lock_purchase(session, purchase)
    recorded = session.execute(
        select(CreditLedger.kind, CreditLedger.ref, CreditLedger.delta).where(
            CreditLedger.kind.in_([LedgerKind.REFUND, LedgerKind.REFUND_FAILED]),
            CreditLedger.ref.in_([refund.id for refund in refunds]),
        )
    ).tuples().all()
    took = {ref: -delta for kind, ref, delta in recorded if kind == LedgerKind.REFUND}
    failed = {ref for kind, ref, _ in recorded if kind == LedgerKind.REFUND_FAILED}
    # What the refunds hold now, net of what failed ones gave back. Each change aims at the
    # credits' worth of all the money refunded so far, so the total stays exact even when
    # `created` ties reorder refunds between events.
    taken = -sum(delta for _, _, delta in recorded)
    cumulative = sum(refund.amount for refund in refunds if refund.counts and refund.id in took)
    moved = 0
    for refund in refunds:
        if not refund.counts and refund.id in took and refund.id not in failed:
            give_back = max(0, taken - purchase.credits * min(cumulative, charged) // charged)
            note = f"Refund of {format_money(refund.amount, purchase.currency)} {refund.status}: credits back"
            if _claw_back(session, purchase, credits=-give_back, kind=LedgerKind.REFUND_FAILED, ref=refund.id, note=note):
                taken -= give_back
                left += give_back
                moved -= give_back
    for refund in sorted(refunds, key=lambda r: (r.created, r.id)):
        if not refund.counts or refund.id in took:
            continue
        cumulative += refund.amount
        share = min(purchase.credits * min(cumulative, charged) // charged - taken, left)
        note = f"Refund of {format_money(refund.amount, purchase.currency)} on the {_pack_name(purchase)} pack"
        if share > 0 and _claw_back(session, purchase, credits=share, kind=LedgerKind.REFUND, ref=refund.id, note=note):
            taken += share
            left -= share
            moved += share
    if moved < 0:
        return f"refund failed: gave back {-moved} credits"
    return f"refund: clawed back {moved} credits"


def _list_refunds(payments: PaymentProvider, charge_id: str) -> list[Refund]:
    try:
        return payments.list_refunds(charge_id)
    except PaymentError as exc:
        raise PaymentUnavailable(str(exc)) from exc


def _claw_back_dispute(session: Session, purchase: CheckoutSession, dispute: dict[str, Any]) -> bool:
    """Take back the disputed share of the pack (all of it for a full dispute), once per dispute,
    never more than refunds left: a customer who disputes money already refunded keeps no credit
    either way, and loses none twice."""
    left = _lock_purchase(session, purchase)
    disputed = min(int(dispute.get("amount") or purchase.amount_total), purchase.amount_total)
    # Rounded up, where refunds round down: a dispute of whatever was not refunded then takes
    # exactly the credits the refunds left, so no credit outlives the money going back.
    credits = -(-purchase.credits * disputed // purchase.amount_total) if purchase.amount_total else purchase.credits
    note = f"Payment disputed: the {_pack_name(purchase)} pack"
    return _claw_back(session, purchase, credits=min(credits, max(left, 0)), kind=LedgerKind.DISPUTE, ref=dispute["id"], note=note)


def _on_dispute_created(session: Session, payments: PaymentProvider, dispute: dict[str, Any]) -> str:
    purchase = _purchase_for(session, payments, _id_of(dispute.get("payment_intent")))
    if purchase is None:
        return "ignored: no Luster purchase for this dispute"
    return "dispute: credits clawed back" if _claw_back_dispute(session, purchase, dispute) else "dispute: already clawed back"


def _on_dispute_closed(session: Session, payments: PaymentProvider, dispute: dict[str, Any]) -> str:
    purchase = _purchase_for(session, payments, _id_of(dispute.get("payment_intent")))
    if purchase is None:
        return "ignored: no Luster purchase for this dispute"
    # If `closed` overtakes `created`, claw back first so the later `created` changes nothing.
    _claw_back_dispute(session, purchase, dispute)
    if dispute.get("status") not in DISPUTE_REINSTATED_STATUSES:
        return f"dispute closed ({dispute.get('status')}): credits stay clawed back"
    clawed = session.execute(
        select(CreditLedger.delta).where(CreditLedger.kind == LedgerKind.DISPUTE, CreditLedger.ref == dispute["id"])
    ).scalar_one()
    reinstated = _claw_back(
        session,
        purchase,
        credits=clawed,
        kind=LedgerKind.DISPUTE_WON,
        ref=dispute["id"],
        note=f"Dispute won: the {_pack_name(purchase)} pack's credits are back",
    )
    return "dispute won: credits reinstated" if reinstated else "dispute won: already reinstated"


HANDLERS: dict[str, Handler] = {
    "checkout.session.completed": _on_checkout_event,
    "checkout.session.async_payment_succeeded": _on_checkout_event,
    "checkout.session.async_payment_failed": _on_async_payment_failed,
    "checkout.session.expired": _on_checkout_event,
    "charge.refunded": _on_charge_refunded,
    "charge.refund.updated": _on_refund_updated,
    "refund.updated": _on_refund_updated,
    "refund.failed": _on_refund_updated,
    "charge.dispute.created": _on_dispute_created,
    "charge.dispute.closed": _on_dispute_closed,
}
