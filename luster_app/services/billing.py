"""Buying credit packs: checkout, fulfilment (exactly once), the success page's view, the ledger.

Every grant and claw-back is a ledger row with UNIQUE(kind, ref), so whichever of the webhook,
the success page or a redelivery gets there first wins, and the others change nothing.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass

from sqlalchemy import select, update
from sqlmodel import Session

from luster_app.billing import PaymentError, PaymentProvider, ProviderCheckout, find_pack, format_money
from luster_app.billing.local import LocalPayments
from luster_app.db import is_postgres
from luster_app.models import CheckoutSession, CreditLedger, LedgerKind, User, utcnow
from luster_app.services.credits import apply_ledger_entry
from luster_app.services.errors import Invalid, NotFound, ServiceError
from luster_app.services.jobs import start_transaction
from luster_app.services.ratelimit import check_rate_limit

SUCCESS_PATH = "/billing/success"
CANCEL_PATH = "/billing/cancel"
# Stripe substitutes the session id into this placeholder on redirect.
STRIPE_SESSION_PLACEHOLDER = "{CHECKOUT_SESSION_ID}"

REASON_PROCESSING = "Your payment is still processing; the credits arrive as soon as it clears."
REASON_FAILED = "Your payment did not go through, so no credits were added. Try again, perhaps with another payment method."
REASON_EXPIRED = "This checkout expired before payment; nothing was charged."


class PaymentUnavailable(ServiceError):
    """The payment provider could not be reached or refused; trying again later may work."""

    status_code = 502


class NotOurCheckout(ServiceError):
    """A Checkout Session Luster did not create (no Luster user or pack in it)."""

    status_code = 404


@dataclass(frozen=True)
class CheckoutLink:
    """Where to send the browser to pay."""

    session_id: str
    url: str


@dataclass(frozen=True)
class Fulfilment:
    """What fulfilling a Checkout Session did: `granted` is True only for the call that granted."""

    session_id: str
    status: str  # open, processing, paid, failed, expired
    granted: bool
    credits: int

    @property
    def outcome(self) -> str:
        if self.granted:
            return f"granted {self.credits} credits"
        if self.status == "paid":
            return "already granted"
        return f"nothing granted: checkout {self.status}"


@dataclass(frozen=True)
class CheckoutView:
    """A checkout as the success page shows it."""

    session_id: str
    pack_id: str
    pack_name: str
    credits: int
    amount_total: int
    currency: str
    price_display: str
    status: str
    status_reason: str | None
    credits_granted: bool


def success_url(app_url: str, session_id: str) -> str:
    """The success page for a checkout (Stripe fills in its placeholder itself)."""
    return f"{app_url}{SUCCESS_PATH}?session_id={session_id}"


def cancel_url(app_url: str) -> str:
    return f"{app_url}{CANCEL_PATH}"


def create_checkout(
    *, session: Session, payments: PaymentProvider, app_url: str, user_id: uuid.UUID, pack_id: str, per_hour: int
) -> CheckoutLink:
    """Open a Checkout Session for one pack and record it; the browser goes to the returned url.
    At most `per_hour` per user (429 beyond): each one is a call to Stripe and a row here."""
    pack = find_pack(pack_id)
    if pack is None:
        raise Invalid(f"unknown pack {pack_id!r}")
    start_transaction(session)
    # Its own transaction, committed first: a checkout that fails later still counts.
    check_rate_limit(
        session=session, bucket=f"checkouts:{user_id}", limit=per_hour, window_seconds=3600,
        message="Too many checkouts opened in the last hour; finish one you opened, or try again later.",
    )
    user = session.get(User, user_id)
    session.commit()
    try:
        checkout = payments.create_checkout(
            pack=pack,
            user_id=user_id,
            success_url=success_url(app_url, STRIPE_SESSION_PLACEHOLDER),
            cancel_url=cancel_url(app_url),
            customer_email=user.email if user is not None and user.closed_at is None else None,
        )
    except PaymentError as exc:
        raise PaymentUnavailable(str(exc)) from exc
    if not checkout.url:
        raise PaymentUnavailable("the payment service returned no checkout page")
    session.add(
        CheckoutSession(
            id=checkout.id,
            user_id=user_id,
            pack_id=pack.id,
            credits=pack.credits,
            amount_total=checkout.amount_total or pack.price,
            currency=checkout.currency or pack.currency,
        )
    )
    session.commit()
    return CheckoutLink(session_id=checkout.id, url=checkout.url)


def fulfil_checkout_session(*, session: Session, payments: PaymentProvider, session_id: str) -> Fulfilment:
    """Grant a paid Checkout Session's credits exactly once; the webhook and the success page both call this."""
    checkout = retrieve_checkout(session=session, payments=payments, session_id=session_id)
    start_transaction(session)
    try:
        lock_checkout(session, session_id)
        fulfilment = grant_if_paid(session=session, checkout=checkout)
        session.commit()
    except BaseException:
        session.rollback()
        raise
    return fulfilment


def retrieve_checkout(*, session: Session, payments: PaymentProvider, session_id: str) -> ProviderCheckout:
    """The session as Stripe has it now, asked with no transaction open: a slow Stripe holds no lock."""
    start_transaction(session)
    try:
        return payments.retrieve_checkout(session_id)
    except PaymentError as exc:
        raise PaymentUnavailable(str(exc)) from exc


def lock_checkout(session: Session, session_id: str) -> None:
    """Serialise the changes to one checkout until the transaction ends (SQLite: its write lock,
    taken before any read, since SQLite refuses to upgrade a read snapshot under contention)."""
    if is_postgres(session.get_bind()):
        session.execute(select(CheckoutSession.id).where(CheckoutSession.id == session_id).with_for_update())
    else:
        session.execute(update(CheckoutSession).where(CheckoutSession.id == session_id).values(status=CheckoutSession.status))


def grant_if_paid(*, session: Session, checkout: ProviderCheckout) -> Fulfilment:
    """Fulfilment's core, inside the caller's transaction (it does not commit); the caller holds
    `lock_checkout`, so the row read here is the latest."""
    row = session.get(CheckoutSession, checkout.id, populate_existing=True)
    # Our own record of what was sold wins over metadata, which stays editable at Stripe, and
    # over today's pack list: a pack renamed or retired since still gets what the buyer paid for.
    user_id = row.user_id if row is not None else _checkout_user_id(checkout)
    sold_pack = find_pack(checkout.metadata.get("pack", "")) if row is None else None
    if user_id is None or (row is None and sold_pack is None) or session.get(User, user_id) is None:
        raise NotOurCheckout("no such checkout")
    if not checkout.is_paid:
        return _record_unpaid(session, row, checkout)
    credits = row.credits if row is not None else _credits_bought(checkout, sold_pack.id)
    name = pack_name(row.pack_id) if row is not None else sold_pack.name
    granted = apply_ledger_entry(
        session=session,
        user_id=user_id,
        delta=credits,
        kind=LedgerKind.PURCHASE,
        ref=checkout.id,
        note=f"{name} pack: {credits} credits",
    )
    if granted:
        if row is None:  # created elsewhere or its insert was lost: the ledger row is what counts
            row = CheckoutSession(id=checkout.id, user_id=user_id, pack_id=sold_pack.id, credits=credits,
                                  amount_total=checkout.amount_total, currency=checkout.currency)
            session.add(row)
        row.amount_total = checkout.amount_total
        row.currency = checkout.currency
        row.payment_intent_id = checkout.payment_intent_id
        row.status = "paid"
        row.status_reason = None
        row.fulfilled_at = utcnow()
    return Fulfilment(session_id=checkout.id, status="paid", granted=granted, credits=credits)


def pack_name(pack_id: str) -> str:
    pack = find_pack(pack_id)
    return pack.name if pack else pack_id


def _checkout_user_id(checkout: ProviderCheckout) -> uuid.UUID | None:
    try:
        return uuid.UUID(checkout.client_reference_id or checkout.metadata.get("user_id", ""))
    except ValueError:
        return None


def _credits_bought(checkout: ProviderCheckout, sold_pack_id: str) -> int:
    """Credits for the line items; an inline price (no Stripe Price id configured) is the pack sold."""
    if not checkout.line_items:
        raise PaymentUnavailable("the payment service returned the checkout without its line items")
    total = 0
    for item in checkout.line_items:
        pack = find_pack(item.pack_id or sold_pack_id)
        if pack is None:
            raise NotOurCheckout(f"checkout line item {item.price_id!r} is not a Luster pack")
        total += pack.credits * item.quantity
    return total


def _record_unpaid(session: Session, row: CheckoutSession | None, checkout: ProviderCheckout) -> Fulfilment:
    """Show the buyer why nothing arrived yet; only an open checkout moves, so a final state stays."""
    status = {"complete": "processing", "expired": "expired"}.get(checkout.status)
    if row is not None and status is not None:
        reason = REASON_PROCESSING if status == "processing" else REASON_EXPIRED
        _move_checkout(session, checkout.id, status=status, reason=reason, from_statuses=("open",))
        session.refresh(row)
    return Fulfilment(session_id=checkout.id, status=row.status if row else "open", granted=False, credits=0)


def _move_checkout(session: Session, session_id: str, *, status: str, reason: str, from_statuses: tuple[str, ...]) -> bool:
    # A conditional UPDATE, not read-modify-write: a concurrent event may have moved it meanwhile.
    moved = session.execute(
        update(CheckoutSession)
        .where(
            CheckoutSession.id == session_id,
            CheckoutSession.status.in_(from_statuses),
            CheckoutSession.fulfilled_at.is_(None),
        )
        .values(status=status, status_reason=reason)
    )
    return moved.rowcount == 1


def record_payment_failed(*, session: Session, session_id: str) -> str:
    """An asynchronous payment failed: say why on the checkout, unless it was paid after all (no commit)."""
    if session.get(CheckoutSession, session_id) is None:
        return "ignored: not a Luster checkout"
    if not _move_checkout(session, session_id, status="failed", reason=REASON_FAILED, from_statuses=("open", "processing")):
        return "ignored: checkout already settled"
    return "payment failed; reason recorded"


def checkout_status(
    *, session: Session, payments: PaymentProvider, user_id: uuid.UUID, session_id: str
) -> CheckoutView:
    """The caller's checkout for the success page, fulfilling it first if it is paid but not yet granted."""
    row = session.get(CheckoutSession, session_id)
    if row is None or row.user_id != user_id:
        raise NotFound("no such checkout")
    if row.fulfilled_at is None and row.status not in ("failed", "expired"):
        fulfil_checkout_session(session=session, payments=payments, session_id=session_id)
        session.refresh(row)
    return CheckoutView(
        session_id=row.id,
        pack_id=row.pack_id,
        pack_name=pack_name(row.pack_id),
        credits=row.credits,
        amount_total=row.amount_total,
        currency=row.currency,
        price_display=format_money(row.amount_total, row.currency),
        status=row.status,
        status_reason=row.status_reason,
        credits_granted=row.fulfilled_at is not None,
    )


def local_checkout(*, session: Session, payments: PaymentProvider, session_id: str) -> CheckoutView:
    """A checkout of the local provider, for its "Pay" page (404 under Stripe)."""
    _local_provider(payments)
    row = session.get(CheckoutSession, session_id)
    if row is None:
        raise NotFound("no such checkout")
    return checkout_status(session=session, payments=payments, user_id=row.user_id, session_id=session_id)


def pay_local_checkout(*, session: Session, payments: PaymentProvider, session_id: str) -> Fulfilment:
    """The local page's "Pay": the local processor takes the money, then the usual fulfilment grants."""
    local_checkout(session=session, payments=payments, session_id=session_id)
    # End our read snapshot first: SQLite cannot turn it into a write after pay() has written.
    session.commit()
    _local_provider(payments).pay(session_id)
    return fulfil_checkout_session(session=session, payments=payments, session_id=session_id)


def _local_provider(payments: PaymentProvider) -> LocalPayments:
    if not isinstance(payments, LocalPayments):
        raise NotFound("no such checkout: payments go through Stripe")
    return payments


@dataclass(frozen=True)
class Paid:
    """What a purchase cost: in the currency's smallest unit, and as a person reads it ("$12.00")."""

    amount_total: int
    currency: str
    display: str


def amounts_paid(*, session: Session, user_id: uuid.UUID, entries: list[CreditLedger]) -> dict[int, Paid]:
    """For each purchase among the user's ledger `entries` (by ledger id), the money paid for it."""
    refs = {entry.ref: entry.id for entry in entries if entry.kind == LedgerKind.PURCHASE}
    if not refs:
        return {}
    rows = session.execute(
        select(CheckoutSession.id, CheckoutSession.amount_total, CheckoutSession.currency)
        .where(CheckoutSession.user_id == user_id, CheckoutSession.id.in_(list(refs)))
    ).all()
    return {refs[ref]: Paid(amount, currency, format_money(amount, currency)) for ref, amount, currency in rows}


def list_ledger(
    *, session: Session, user_id: uuid.UUID, limit: int = 50, before_id: int | None = None
) -> list[CreditLedger]:
    """The user's credit history, newest first; page with `before_id` (the last id seen)."""
    query = select(CreditLedger).where(CreditLedger.user_id == user_id)
    if before_id is not None:
        query = query.where(CreditLedger.id < before_id)
    query = query.order_by(CreditLedger.id.desc()).limit(max(1, min(limit, 200)))
    return list(session.execute(query).scalars())
