"""/billing: balance, credit packs, history; /billing/success and /billing/cancel after checkout."""

from __future__ import annotations

import asyncio
import dataclasses
import json
import uuid

import reflex as rx

from luster_app import routes
from luster_app.billing import PACKS, format_money
from luster_app.components.shell import empty_state, error_callout, loading, page_shell
from luster_app.context import AppContext
from luster_app.services import billing
from luster_app.services.errors import ServiceError
from luster_app.state import AuthState, app_context

# How long the success page keeps asking before it says the payment is still on its way.
SUCCESS_POLLS = 30
SUCCESS_POLL_SECONDS = 2
LEDGER_KINDS = {
    "purchase": "Purchase",
    "job": "Enhanced photo",
    "refund": "Refund",
    "refund_failed": "Refund failed",
    "dispute": "Payment disputed",
    "dispute_won": "Dispute won",
    "adjustment": "Adjustment",
}


@dataclasses.dataclass
class PackCard:
    id: str
    name: str
    credits: int
    price: str
    per_credit: str


@dataclasses.dataclass
class LedgerRow:
    when: str
    what: str
    note: str
    delta: str
    positive: bool
    paid: str  # a purchase's price ("$12.00"), else ""


def _ledger(context: AppContext, user_id: uuid.UUID) -> list[LedgerRow]:
    with context.session() as session:
        entries = billing.list_ledger(session=session, user_id=user_id, limit=100)
        paid = billing.amounts_paid(session=session, user_id=user_id, entries=entries)
    return [
        LedgerRow(
            when=entry.created_at.strftime("%b %d, %Y %H:%M UTC"),
            what=LEDGER_KINDS.get(entry.kind, entry.kind),
            note=entry.note,
            delta=f"{entry.delta:+d}",
            positive=entry.delta > 0,
            paid=paid[entry.id].display if entry.id in paid else "",
        )
        for entry in entries
    ]


def _checkout(context: AppContext, user_id: uuid.UUID, pack_id: str) -> str:
    with context.session() as session:
        return billing.create_checkout(
            session=session, payments=context.payments, app_url=context.settings.app_url, user_id=user_id,
            pack_id=pack_id, per_hour=context.settings.checkouts_per_hour_per_user,
        ).url


def _checkout_status(context: AppContext, user_id: uuid.UUID, session_id: str) -> billing.CheckoutView:
    with context.session() as session:
        return billing.checkout_status(session=session, payments=context.payments, user_id=user_id, session_id=session_id)


class BillingState(AuthState):
    """Packs on sale, the credit history, and where a checkout stands."""

    packs: list[PackCard] = [
        PackCard(id=p.id, name=p.name, credits=p.credits, price=p.price_display,
                 per_credit=f"{format_money(round(p.price / p.credits), p.currency)} per photo")
        for p in PACKS
    ]
    ledger: list[LedgerRow] = []
    credits_reserved: int = 0
    loaded: bool = False
    error: str = ""
    buying: str = ""
    # The success page: "checking", "granted", or the checkout's final status with its reason.
    checkout_state: str = "checking"
    checkout_reason: str = ""
    checkout_pack: str = ""
    checkout_credits: int = 0

    @rx.event
    async def load(self):
        """Balance, reserved and available credits, and the history."""
        user = self._signed_in_user()
        if user is None:
            yield self._sign_in_first()
            return
        self._load_credits(user)
        self.credits_reserved = self.credits_balance - self.credits_available
        self.error = ""
        try:
            self.ledger = await asyncio.to_thread(_ledger, app_context(), user.id)
        except ServiceError as exc:
            self.error = str(exc)
        self.loaded = True

    @rx.event
    async def buy(self, pack_id: str):
        """Open a checkout for the pack and go to its payment page."""
        user = self._signed_in_user()
        if user is None:
            yield self._sign_in_first()
            return
        self.buying, self.error = pack_id, ""
        yield
        try:
            url = await asyncio.to_thread(_checkout, app_context(), user.id, pack_id)
        except ServiceError as exc:
            self.error = f"{exc} Nothing was charged; try again in a moment."
            return
        finally:
            self.buying = ""
        # A full page load: the local checkout page is on this host but not a page of the app.
        yield rx.call_script(f"window.location.assign({json.dumps(url)})")

    @rx.event
    def start_success(self):
        """on_load of /billing/success: follow the checkout until its credits arrive."""
        if self._signed_in_user() is None:
            return self._sign_in_first()
        self.checkout_state, self.checkout_reason = "checking", ""
        return BillingState.follow_checkout

    @rx.event(background=True)
    async def follow_checkout(self):
        """Ask where the checkout stands until it is granted or settled (the webhook may come later)."""
        for _ in range(SUCCESS_POLLS):
            async with self:
                user = self._signed_in_user()
                session_id = self.router.url.query_parameters.get("session_id", "")
                if user is None or self.router.url.path.rstrip("/") != routes.BILLING_SUCCESS:
                    return
            try:
                view = await asyncio.to_thread(_checkout_status, app_context(), user.id, session_id)
            except ServiceError as exc:
                async with self:
                    self.checkout_state, self.checkout_reason = "unknown", str(exc)
                return
            async with self:
                self.checkout_pack, self.checkout_credits = view.pack_name, view.credits
                if view.credits_granted:
                    self.checkout_state = "granted"
                    self._load_credits(user)
                    return
                self.checkout_reason = view.status_reason or ""
                if view.status in ("failed", "expired"):
                    self.checkout_state = view.status
                    return
            await asyncio.sleep(SUCCESS_POLL_SECONDS)
        async with self:
            self.checkout_state = "pending"
            self.checkout_reason = self.checkout_reason or billing.REASON_PROCESSING


def _balance_cards() -> rx.Component:
    def stat(label: str, value: rx.Var, hint: str, stat_id: str) -> rx.Component:
        return rx.card(
            rx.vstack(
                rx.text(label, size="2", color_scheme="gray"),
                rx.heading(value, size="7", id=stat_id),
                rx.text(hint, size="1", color_scheme="gray"),
                spacing="1",
            ),
            flex="1 1 10em",
        )

    return rx.flex(
        stat("Balance", BillingState.credits_balance, "credits you own", "billing-balance"),
        stat("Reserved", BillingState.credits_reserved, "held by photos being enhanced", "billing-reserved"),
        stat("Available", BillingState.credits_available, "ready to spend", "billing-available"),
        spacing="3",
        wrap="wrap",
        width="100%",
    )


def _pack(pack: PackCard) -> rx.Component:
    return rx.card(
        rx.vstack(
            rx.heading(pack.name, size="5"),
            rx.text(pack.credits, " credits", size="4", weight="bold"),
            rx.text(pack.price, size="6"),
            rx.text(pack.per_credit, size="1", color_scheme="gray"),
            rx.button(
                "Buy",
                on_click=BillingState.buy(pack.id),
                loading=BillingState.buying == pack.id,
                disabled=BillingState.buying != "",
                width="100%",
                id="buy-" + pack.id,
            ),
            spacing="2",
            align="start",
        ),
        flex="1 1 12em",
    )


def _ledger_table() -> rx.Component:
    return rx.cond(
        BillingState.ledger.length() > 0,
        rx.box(
            rx.table.root(
                rx.table.header(
                    rx.table.row(
                        rx.table.column_header_cell("Date"),
                        rx.table.column_header_cell("What"),
                        rx.table.column_header_cell("Paid", justify="end"),
                        rx.table.column_header_cell("Credits", justify="end"),
                    )
                ),
                rx.table.body(
                    rx.foreach(
                        BillingState.ledger,
                        lambda row: rx.table.row(
                            # Wraps on a phone, so the table fits the screen instead of scrolling sideways.
                            rx.table.cell(row.when, min_width="6.5em"),
                            rx.table.cell(rx.text(row.what, weight="medium"), rx.text(row.note, size="1", color_scheme="gray")),
                            rx.table.cell(row.paid, justify="end", white_space="nowrap", class_name="ledger-paid"),
                            rx.table.cell(
                                rx.text(row.delta, color_scheme=rx.cond(row.positive, "green", "gray"), weight="bold"),
                                justify="end",
                            ),
                            class_name="ledger-row",
                        ),
                    )
                ),
                width="100%",
                size="1",
            ),
            width="100%",
            overflow_x="auto",
            id="ledger",
        ),
        empty_state("receipt", "No credit history yet", "Buy a pack above; every purchase and enhanced photo shows up here."),
    )


def billing_page() -> rx.Component:
    """/billing: where the credits stand, packs to buy, and every change to the balance."""
    return page_shell(
        rx.heading("Billing", size="7", id="billing-title"),
        rx.cond(BillingState.error != "", error_callout(BillingState.error, id="billing-error")),
        _balance_cards(),
        rx.text("One credit per enhanced photo. A photo that fails costs nothing.", color_scheme="gray"),
        rx.heading("Credit packs", size="5"),
        rx.flex(rx.foreach(BillingState.packs, _pack), spacing="3", wrap="wrap", width="100%", id="packs"),
        rx.heading("History", size="5"),
        rx.cond(BillingState.loaded, _ledger_table(), loading("Loading your history…")),
    )


def billing_success_page() -> rx.Component:
    """/billing/success?session_id=…: waits for the credits to arrive, or says why they did not."""
    return page_shell(
        rx.heading("Thank you", size="7"),
        rx.match(
            BillingState.checkout_state,
            ("checking", loading("Confirming your payment…", id="checkout-checking")),
            (
                "granted",
                rx.callout(
                    rx.text(BillingState.checkout_credits, " credits from the ", BillingState.checkout_pack,
                            " pack are in your account. Your balance is ", BillingState.credits_balance, " credits."),
                    icon="circle_check",
                    color_scheme="green",
                    id="checkout-granted",
                ),
            ),
            (
                "pending",
                rx.callout(BillingState.checkout_reason, icon="clock", color_scheme="amber", id="checkout-pending"),
            ),
            error_callout(BillingState.checkout_reason, id="checkout-failed"),
        ),
        rx.hstack(
            rx.link(rx.button("Back to your shoots"), href=routes.SHOOTS, id="checkout-to-shoots"),
            rx.link(rx.button("Billing", variant="soft"), href=routes.BILLING),
            spacing="3",
            wrap="wrap",
        ),
    )


def billing_cancel_page() -> rx.Component:
    """/billing/cancel: the buyer left checkout; nothing was charged."""
    return page_shell(
        rx.heading("Checkout cancelled", size="7"),
        rx.text("Nothing was charged and your balance is unchanged. You can pick a pack again whenever you are ready.",
                id="checkout-cancelled"),
        rx.link(rx.button("Back to billing"), href=routes.BILLING),
    )
