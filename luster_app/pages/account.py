"""/account: who is signed in, their credits, signing out, and closing the account."""

from __future__ import annotations

import reflex as rx

from luster_app import routes
from luster_app.components.shell import error_callout, page_shell
from luster_app.pages.account_state import AccountState


def _close_dialog() -> rx.Component:
    """The confirmation step: it names what goes and what stays."""
    return rx.alert_dialog.root(
        rx.alert_dialog.content(
            rx.alert_dialog.title("Close your Luster account?"),
            rx.alert_dialog.description(
                rx.vstack(
                    rx.text(
                        "This deletes for good your ",
                        rx.text.strong(AccountState.shoot_count, rx.cond(AccountState.shoot_count == 1, " shoot", " shoots")),
                        " and ",
                        rx.text.strong(AccountState.photo_count, rx.cond(AccountState.photo_count == 1, " photo", " photos")),
                        ", every enhanced version and every stored file. Your ",
                        rx.text.strong(AccountState.credits_balance, " unused credits"),
                        " are lost, and you are signed out on every device.",
                        id="close-what-goes",
                    ),
                    rx.text(AccountState.what_stays, size="2", color_scheme="gray"),
                    spacing="2",
                ),
            ),
            rx.cond(AccountState.close_error != "", error_callout(AccountState.close_error, id="close-error")),
            rx.hstack(
                rx.alert_dialog.cancel(rx.button("Keep my account", variant="soft", color_scheme="gray")),
                rx.button("Close account and delete everything", color_scheme="red", on_click=AccountState.close_account,
                          id="close-account-confirm"),
                justify="end",
                wrap="wrap",
                margin_top="1em",
            ),
            max_width="32em",
        ),
        open=AccountState.close_open,
        on_open_change=AccountState.set_close_open,
    )


def account_page() -> rx.Component:
    """The account's email and credits, with links to buy more, to sign out, and to close it."""
    return page_shell(
        rx.heading("Account", size="7", id="account-title"),
        rx.card(
            rx.data_list.root(
                rx.data_list.item(rx.data_list.label("Email"), rx.data_list.value(AccountState.email, id="account-email")),
                rx.data_list.item(
                    rx.data_list.label("Balance"),
                    rx.data_list.value(rx.text(AccountState.credits_balance, " credits", id="account-balance")),
                ),
                rx.data_list.item(
                    rx.data_list.label("Available"),
                    rx.data_list.value(rx.text(AccountState.credits_available, " credits")),
                ),
                rx.data_list.item(
                    rx.data_list.label("Photos kept"),
                    rx.data_list.value(rx.text(AccountState.retention, id="account-retention")),
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
        rx.card(
            rx.vstack(
                rx.heading("Close your account", size="4"),
                rx.text(
                    "Closing deletes every shoot, photo and stored file. ", AccountState.what_stays,
                    size="2", color_scheme="gray", id="account-what-stays",
                ),
                rx.button("Close account…", color_scheme="red", variant="soft", on_click=AccountState.set_close_open(True),
                          id="close-account"),
                spacing="2",
            ),
            width="100%",
        ),
        _close_dialog(),
    )
