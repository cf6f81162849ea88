"""Stripe webhook events: each id is handled once, in one transaction with the credits it moves.

Refunds, disputes and their outcomes move a purchase's credits to what its charge, as Stripe has
it now, leaves paid for; each change is a ledger row keyed by the event's id, so redeliveries,
reorderings and concurrent duplicates change nothing twice.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session

from luster_app.billing import PaymentError, PaymentProvider, ProviderCheckout, format_money
from luster_app.billing.base import Dispute, Refund
from luster_app.models import CheckoutSession, LedgerKind, StripeEvent, utcnow
from luster_app.services.billing import (
    NotOurCheckout,
    PaymentUnavailable,
    pack_name,
    grant_if_paid,
    lock_checkout,
    record_payment_failed,
    retrieve_checkout,
)
from luster_app.services.credits import apply_ledger_entry
from luster_app.services.jobs import start_transaction
from luster_app.services.takeback import take_back

log = logging.getLogger(__name__)

DUPLICATE = "duplicate: already handled"
# A settlement whose Stripe read another settlement overtook reads Stripe again, this many times.
SETTLE_TRIES = 5


class _Overtaken(Exception):
    """Another settlement of the purchase committed after this one read Stripe."""


@dataclass(frozen=True)
class Handler:
    """How an event type is handled: `fetch` asks Stripe with no transaction open (it may read the
    database, and commits that read), then `apply` moves the database under the locks, in the
    transaction that records the event once."""

    fetch: Callable[[Session, PaymentProvider, dict[str, Any]], Any]
    apply: Callable[[Session, Any, str], str]


def handle_stripe_event(*, session: Session, payments: PaymentProvider, event: dict[str, Any]) -> str:
    """Apply a verified Stripe event once and commit; returns what it did. Raises to make Stripe retry."""
    event_id, event_type = str(event["id"]), str(event.get("type", ""))
    if session.get(StripeEvent, event_id) is not None:
        session.commit()
        return DUPLICATE
    session.commit()
    handler = HANDLERS.get(event_type)
    if handler is None:
        return _apply_once(session, event_id, event_type, lambda: "ignored: not an event Luster uses")
    for _ in range(SETTLE_TRIES):
        try:
            fetched = handler.fetch(session, payments, event["data"]["object"])
            return _apply_once(session, event_id, event_type, functools.partial(handler.apply, session, fetched, event_id))
        except NotOurCheckout:
            return _apply_once(session, event_id, event_type, lambda: "ignored: not a Luster checkout")
        except _Overtaken:
            continue
    raise PaymentUnavailable(f"Stripe event {event_id}: other settlements of its purchase kept overtaking it")


def _apply_once(session: Session, event_id: str, event_type: str, apply: Callable[[], str]) -> str:
    """Record the event and run `apply` in one transaction; a concurrent delivery of the same event
    waits on the event's row until this one ends, then finds it a duplicate."""
    start_transaction(session)
    record = StripeEvent(id=event_id, type=event_type, processed_at=utcnow())
    try:
        # The first statement writes, so SQLite takes its write lock before any read.
        session.add(record)
        session.flush()
    except IntegrityError:
        session.rollback()
        return DUPLICATE
    try:
        outcome = apply()
        record.outcome = outcome[:500]
        session.commit()
    except BaseException:
        session.rollback()
        raise
    return outcome


def _retrieve_session(session: Session, payments: PaymentProvider, obj: dict[str, Any]) -> ProviderCheckout:
    # The live session decides, not the event's copy: `completed` may say unpaid after the
    # async payment already succeeded, and then it must not matter which arrives first.
    return retrieve_checkout(session=session, payments=payments, session_id=obj["id"])


def _grant(session: Session, checkout: ProviderCheckout, _event_id: str) -> str:
    lock_checkout(session, checkout.id)
    return grant_if_paid(session=session, checkout=checkout).outcome


def _payment_failed(session: Session, obj: dict[str, Any], _event_id: str) -> str:
    return record_payment_failed(session=session, session_id=obj["id"])


@dataclass(frozen=True)
class ChargeState:
    """A charge's refunds and disputes as Stripe had them, read after settlement `settlements`
    of its purchase had committed; `checkout` is set when the purchase was not granted yet."""

    purchase_id: str | None
    checkout: ProviderCheckout | None
    settlements: int
    charge_id: str | None
    refunds: list[Refund]
    disputes: list[Dispute]
    cause: str


def _id_of(value: Any) -> str | None:
    return value.get("id") if isinstance(value, dict) else value or None


def _charge_fetcher(cause: str, charge_field: str) -> Callable[[Session, PaymentProvider, dict[str, Any]], ChargeState]:
    def fetch(session: Session, payments: PaymentProvider, obj: dict[str, Any]) -> ChargeState:
        payment_intent, charge_id = _id_of(obj.get("payment_intent")), _id_of(obj.get(charge_field))
        empty = ChargeState(None, None, 0, charge_id, [], [], cause)
        if not payment_intent or charge_id is None:
            return empty
        # The settlement count is read before Stripe is: see `_settle_claw_backs`.
        found = session.execute(
            select(CheckoutSession.id, CheckoutSession.settlements).where(
                CheckoutSession.payment_intent_id == payment_intent, CheckoutSession.fulfilled_at.is_not(None)
            )
        ).first()
        session.commit()
        try:
            checkout = None
            if found is None:  # its own event has not landed yet: the purchase is granted first
                checkout = payments.find_checkout_by_payment_intent(payment_intent)
                if checkout is None or not checkout.is_paid:
                    return empty
                settlements = session.execute(
                    select(CheckoutSession.settlements).where(CheckoutSession.id == checkout.id)
                ).scalar() or 0
                session.commit()
            else:
                settlements = found.settlements
            refunds, disputes = payments.list_refunds(charge_id), payments.list_disputes(charge_id)
        except PaymentError as exc:
            raise PaymentUnavailable(str(exc)) from exc
        purchase_id = checkout.id if checkout is not None else found.id
        return ChargeState(purchase_id, checkout, settlements, charge_id, refunds, disputes, cause)

    return fetch


def _settle_claw_backs(session: Session, state: ChargeState, event_id: str) -> str:
    """Bring the credits a purchase's refunds and disputes hold back in line with its charge as
    Stripe had it when fetched, recording each change once under this event's id.

    The event only says that something changed: the charge's live refunds and disputes decide.
    Stripe is read with no lock held; the settlement applies only if no other settlement of the
    purchase committed since that read began (its count is unchanged under the lock), else it
    reads Stripe again. So each applied settlement saw Stripe after the one before it, and events
    may arrive in any order, late, twice or at once; a refund that later fails, a dispute of
    money already refunded, or an inquiry closed after a refund all end with the buyer holding
    exactly the credits the money left with us pays for.

    A take-back never spends credits reserved by jobs (see `services/takeback.py`): what the
    balance could not cover stays owed on the purchase, and a later event takes it.
    """
    cause = state.cause
    if state.purchase_id is None:
        return f"ignored: no Luster purchase for this {cause}"
    lock_checkout(session, state.purchase_id)
    if state.checkout is not None:
        grant_if_paid(session=session, checkout=state.checkout)
    purchase = session.get(CheckoutSession, state.purchase_id, populate_existing=True)
    if purchase is None or purchase.fulfilled_at is None:
        return f"ignored: no Luster purchase for this {cause}"
    if purchase.settlements != state.settlements:
        raise _Overtaken
    purchase.settlements += 1
    paid, credits = purchase.amount_total, purchase.credits
    refunded = min(sum(refund.amount for refund in state.refunds if refund.counts), paid)
    disputed = min(sum(dispute.amount for dispute in state.disputes if dispute.counts), paid)
    # Refunds round down and disputes up: a dispute of whatever was not refunded then takes
    # exactly the credits the refunds left, so no credit outlives the money going back. A
    # dispute of money already refunded takes nothing more.
    refund_share = credits * refunded // paid if paid else 0
    dispute_share = min(credits - refund_share, -(-credits * disputed // paid) if paid else credits)
    money, pack = functools.partial(format_money, currency=purchase.currency), pack_name(purchase.pack_id)
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
        change = share - getattr(purchase, column)
        if change == 0:
            continue
        kind, note = take if change > 0 else give
        # The event's id is new here (stripe_events holds it once), so its row is too; the count
        # moves only with its ledger row, by what was really taken or given back.
        if change > 0:
            done = take_back(session=session, user_id=purchase.user_id, credits=change, kind=kind, ref=event_id, note=note)
            moved_by = done.taken
            if done.canceled:
                moved.append(f"canceled {len(done.canceled)} queued jobs")
        else:
            given = apply_ledger_entry(session=session, user_id=purchase.user_id, delta=-change, kind=kind, ref=event_id, note=note)
            moved_by = change if given else 0
        if moved_by:
            setattr(purchase, column, getattr(purchase, column) + moved_by)
            moved.append(f"{'took' if moved_by > 0 else 'gave back'} {abs(moved_by)} credits ({kind})")
        if 0 <= moved_by < change:
            moved.append(f"{change - moved_by} credits owed: the balance could not cover them")
    return f"{cause}: " + (", ".join(moved) if moved else "credits already settled")


_checkout_event = Handler(_retrieve_session, _grant)
_refund_event = Handler(_charge_fetcher("refund", "charge"), _settle_claw_backs)


HANDLERS: dict[str, Handler] = {
    "checkout.session.completed": _checkout_event,
    "checkout.session.async_payment_succeeded": _checkout_event,
    "checkout.session.async_payment_failed": Handler(lambda _session, _payments, obj: obj, _payment_failed),
    "checkout.session.expired": _checkout_event,
    # A charge carries its own id; a refund or dispute names its charge. A refund can fail or
    # be cancelled after `charge.refunded`: the money stays with us.
    "charge.refunded": Handler(_charge_fetcher("refund", "id"), _settle_claw_backs),
    "charge.refund.updated": _refund_event,
    "refund.updated": _refund_event,
    "refund.failed": _refund_event,
    "charge.dispute.created": Handler(_charge_fetcher("dispute", "charge"), _settle_claw_backs),
    "charge.dispute.updated": Handler(_charge_fetcher("dispute", "charge"), _settle_claw_backs),
    "charge.dispute.closed": Handler(_charge_fetcher("dispute", "charge"), _settle_claw_backs),
}
