"""Credit packs, checkout, the ledger, Stripe's webhook and the local checkout page."""

from __future__ import annotations

import html
import logging
from dataclasses import asdict
from datetime import datetime
from typing import Annotated, Any

from fastapi import HTTPException, Path, Query, Request
from fastapi.responses import HTMLResponse, RedirectResponse
from pydantic import BaseModel
from starlette.concurrency import run_in_threadpool

from luster_app.api.deps import Ctx, CurrentUser, DbSession, api_router
from luster_app.api.me import CreditsOut
from luster_app.billing import PACKS, WebhookRejected
from luster_app.metrics import STRIPE_EVENTS
from luster_app.models import CreditLedger
from luster_app.services import billing
from luster_app.services.stripe_events import DUPLICATE, HANDLERS, handle_stripe_event
from luster_app.services.users import credit_summary

router = api_router(tags=["billing"])
log = logging.getLogger(__name__)

# Stripe's events are a few KiB; anything near this cap is not from Stripe.
WEBHOOK_MAX_BYTES = 1024 * 1024

# Stripe's cs_… ids and the local provider's are word characters; anything else (a NUL byte,
# which PostgreSQL refuses) is a 422 here rather than a 500 from the database.
SessionId = Annotated[str, Path(max_length=255, pattern=r"^\w+$")]
# Ledger ids are 32-bit INTEGERs: a bigger cursor would overflow the query parameter on PostgreSQL.
LedgerCursor = Annotated[int | None, Query(ge=0, le=2**31 - 1, description="the last id of the previous page")]


class PackOut(BaseModel):
    id: str
    name: str
    credits: int
    price: int  # in the currency's smallest unit (cents)
    currency: str
    price_display: str


class CheckoutIn(BaseModel):
    pack: str


class CheckoutOut(BaseModel):
    url: str
    session_id: str


class LedgerEntryOut(BaseModel):
    id: int
    delta: int
    kind: str
    ref: str
    note: str
    created_at: datetime
    # A purchase's price: in the currency's smallest unit, the currency, and as read ("$12.00").
    amount_total: int | None = None
    currency: str | None = None
    amount_display: str | None = None


class LedgerOut(BaseModel):
    entries: list[LedgerEntryOut]
    next_before: int | None


class CheckoutStatusOut(BaseModel):
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
    balance: CreditsOut


@router.get("/billing/packs", response_model=list[PackOut])
def list_packs() -> list[PackOut]:
    """The credit packs on sale."""
    return [PackOut(**asdict(pack), price_display=pack.price_display) for pack in PACKS]


@router.post("/billing/checkout", response_model=CheckoutOut)
def start_checkout(body: CheckoutIn, user: CurrentUser, session: DbSession, context: Ctx) -> CheckoutOut:
    """A Checkout Session for one pack: Stripe-hosted, or the local checkout page."""
    link = billing.create_checkout(
        session=session, payments=context.payments, app_url=context.settings.app_url, user_id=user.id, pack_id=body.pack,
        per_hour=context.settings.checkouts_per_hour_per_user,
    )
    return CheckoutOut(url=link.url, session_id=link.session_id)


@router.get("/billing/ledger", response_model=LedgerOut)
def ledger(
    user: CurrentUser,
    session: DbSession,
    limit: int = Query(50, ge=1, le=200),
    before: LedgerCursor = None,
) -> LedgerOut:
    """The caller's credit history, newest first."""
    entries = billing.list_ledger(session=session, user_id=user.id, limit=limit, before_id=before)
    next_before = entries[-1].id if len(entries) == limit else None
    paid = billing.amounts_paid(session=session, user_id=user.id, entries=entries)
    return LedgerOut(entries=[_entry(entry, paid.get(entry.id)) for entry in entries], next_before=next_before)


def _entry(entry: CreditLedger, paid: billing.Paid | None) -> LedgerEntryOut:
    out = LedgerEntryOut(**entry.model_dump())
    if paid is not None:
        out.amount_total, out.currency, out.amount_display = paid.amount_total, paid.currency, paid.display
    return out


@router.get("/billing/sessions/{session_id}", response_model=CheckoutStatusOut)
def checkout_session(session_id: SessionId, user: CurrentUser, session: DbSession, context: Ctx) -> CheckoutStatusOut:
    """The success page polls this: it fulfils a paid checkout the webhook has not granted yet."""
    view = billing.checkout_status(session=session, payments=context.payments, user_id=user.id, session_id=session_id)
    summary = credit_summary(session=session, user_id=user.id)
    return CheckoutStatusOut(**asdict(view), balance=CreditsOut(**summary))


@router.post("/webhooks/stripe")
async def stripe_webhook(request: Request, context: Ctx) -> dict[str, Any]:
    """Signature-verified Stripe events; a non-2xx answer makes Stripe deliver the event again."""
    payload = await _capped_body(request)  # the raw bytes: the signature covers them exactly
    try:
        event = context.payments.verify_webhook(payload, request.headers.get("stripe-signature"))
    except WebhookRejected as exc:
        STRIPE_EVENTS.labels("(unverified)", "rejected").inc()
        raise HTTPException(400, str(exc)) from exc
    # Only the types Luster handles get a series of their own: the label set stays bounded.
    event_type = event.get("type") if event.get("type") in HANDLERS else "(other)"

    def handle() -> str:
        with context.session() as session:
            return handle_stripe_event(session=session, payments=context.payments, event=event)

    try:
        outcome = await run_in_threadpool(handle)
    except Exception as exc:  # noqa: BLE001  (logged with the 5xx answer; Stripe retries)
        STRIPE_EVENTS.labels(event_type, "failed").inc()
        raise HTTPException(500, f"event {event.get('id')} could not be handled now; Stripe will deliver it again") from exc
    STRIPE_EVENTS.labels(event_type, _outcome_label(outcome)).inc()
    return {"received": True, "outcome": outcome}


async def _capped_body(request: Request) -> bytes:
    """The body, refused (413) past WEBHOOK_MAX_BYTES without reading the rest into memory."""
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > WEBHOOK_MAX_BYTES:
        raise HTTPException(413, f"the body is too large: at most {WEBHOOK_MAX_BYTES} bytes")
    body = bytearray()
    async for chunk in request.stream():
        body += chunk
        if len(body) > WEBHOOK_MAX_BYTES:
            raise HTTPException(413, f"the body is too large: at most {WEBHOOK_MAX_BYTES} bytes")
    return bytes(body)


def _outcome_label(outcome: str) -> str:
    if outcome == DUPLICATE:
        return "duplicate"
    return "ignored" if outcome.startswith("ignored") else "handled"


@router.get("/billing/local-checkout/{session_id}", response_class=HTMLResponse, include_in_schema=False)
def local_checkout_page(session_id: SessionId, session: DbSession, context: Ctx) -> HTMLResponse:
    """The embedded provider's stand-in for Stripe's hosted page: the pack, its price, and "Pay"."""
    view = billing.local_checkout(session=session, payments=context.payments, session_id=session_id)
    return HTMLResponse(_local_checkout_html(view, cancel_url=billing.cancel_url(context.settings.app_url)))


@router.post("/billing/local-checkout/{session_id}/pay", include_in_schema=False)
def local_checkout_pay(session_id: SessionId, session: DbSession, context: Ctx) -> RedirectResponse:
    """"Pay" on the local checkout page: fulfil, then back to the app's success page."""
    billing.pay_local_checkout(session=session, payments=context.payments, session_id=session_id)
    return RedirectResponse(billing.success_url(context.settings.app_url, session_id), status_code=303)


def _local_checkout_html(view: billing.CheckoutView, *, cancel_url: str) -> str:
    pack, price, session_id = html.escape(view.pack_name), html.escape(view.price_display), html.escape(view.session_id)
    if view.credits_granted:
        action = "<p>Paid: the credits are in your account.</p>"
    else:
        action = (
            f'<form method="post" action="/api/billing/local-checkout/{session_id}/pay">'
            f'<button type="submit">Pay {price}</button></form>'
            f'<p><a href="{html.escape(cancel_url)}">Cancel</a></p>'
        )
    return (
        "<!doctype html><html lang=en><head><meta charset=utf-8>"
        '<meta name=viewport content="width=device-width,initial-scale=1">'
        "<title>Luster checkout</title>"
        "<style>body{font-family:system-ui,sans-serif;max-width:28rem;margin:4rem auto;padding:0 1rem}"
        "button{font-size:1.1rem;padding:.6rem 1.4rem;cursor:pointer}</style></head><body>"
        f"<h1>{pack} pack</h1><p>{view.credits} credits for {price}.</p>"
        "<p><small>Local checkout: no card is charged on this machine.</small></p>"
        f"{action}</body></html>"
    )
