"""/account: who is signed in, their credits, and signing out."""

from __future__ import annotations

import reflex as rx

from luster_app import routes
from luster_app.components.shell import page_shell
from luster_app.state import AuthState


def account_page() -> rx.Component:
    """The account's email and credits, with links to buy more and to sign out."""
    return page_shell(
        rx.heading("Account", size="7", id="account-title"),
        rx.card(
            rx.data_list.root(
                rx.data_list.item(rx.data_list.label("Email"), rx.data_list.value(AuthState.email, id="account-email")),
                rx.data_list.item(
                    rx.data_list.label("Balance"),
                    rx.data_list.value(rx.text(AuthState.credits_balance, " credits", id="account-balance")),
                ),
                rx.data_list.item(
                    rx.data_list.label("Available"),
                    rx.data_list.value(rx.text(AuthState.credits_available, " credits")),
                ),
                orientation=rx.breakpoints(initial="vertical", sm="horizontal"),
            ),
            width="100%",
        ),
        rx.flex(
            rx.link(rx.button(rx.icon("coins"), "Buy credits"), href=routes.BILLING),
            rx.link(rx.button(rx.icon("log_out"), "Sign out", variant="soft", color_scheme="gray"),
                    href=routes.LOGOUT, id="account-sign-out"),
            spacing="3",
            wrap="wrap",
        ),
    )
