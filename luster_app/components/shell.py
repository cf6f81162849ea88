"""The page shell: top navigation and content column that every page plugs into."""

from __future__ import annotations

import reflex as rx

from luster_app import routes
from luster_app.state import AuthState

NAV_LINKS = [("Shoots", routes.SHOOTS), ("Billing", routes.BILLING), ("Account", routes.ACCOUNT)]


def _signed_in_menu() -> rx.Component:
    return rx.hstack(
        *[rx.link(label, href=href, id=f"nav-{label.lower()}", size="2") for label, href in NAV_LINKS],
        rx.link(
            rx.badge(
                rx.icon("coins", size=14),
                rx.text(AuthState.credits_balance, " credits", id="nav-balance"),
                size="2",
                variant="soft",
            ),
            href=routes.BILLING,
            underline="none",
        ),
        rx.link(rx.button("Sign out", variant="ghost", size="2"), href=routes.LOGOUT, id="nav-sign-out"),
        spacing="3",
        align="center",
        wrap="wrap",
        justify="end",
    )


def navbar() -> rx.Component:
    return rx.hstack(
        rx.link(rx.heading("Luster", size="6"), href=routes.LANDING, underline="none"),
        rx.spacer(),
        rx.cond(
            AuthState.signed_in,
            _signed_in_menu(),
            rx.link(rx.button("Sign in", variant="soft"), href=routes.LOGIN, id="nav-sign-in"),
        ),
        padding_x=rx.breakpoints(initial="1em", sm="1.5em"),
        padding_y="0.75em",
        border_bottom="1px solid var(--gray-5)",
        width="100%",
        align="center",
        wrap="wrap",
        spacing="3",
    )


def page_shell(*children: rx.Component) -> rx.Component:
    """Navigation on top, then the page's content in a readable column."""
    return rx.box(
        navbar(),
        rx.container(
            rx.vstack(*children, spacing="5", width="100%"),
            size="4",
            padding_y="1.5em",
            padding_x=rx.breakpoints(initial="0.75em", sm="1.5em"),
        ),
        width="100%",
    )


def empty_state(icon: str, title: str, body: str, *actions: rx.Component, **props) -> rx.Component:
    """What a page shows when it has nothing yet: what this is and the first thing to do."""
    return rx.card(
        rx.vstack(
            rx.icon(icon, size=32, color="var(--gray-9)"),
            rx.heading(title, size="4"),
            rx.text(body, color_scheme="gray", align="center"),
            *actions,
            align="center",
            spacing="3",
            padding_y="1.5em",
        ),
        width="100%",
        **props,
    )


def error_callout(message: rx.Var | str, **props) -> rx.Component:
    """A problem and, in its words, what to do about it."""
    return rx.callout(message, icon="triangle_alert", color_scheme="red", width="100%", **props)


def loading(label: str = "Loading…", **props) -> rx.Component:
    return rx.hstack(rx.spinner(size="2"), rx.text(label, color_scheme="gray"), align="center", spacing="2", **props)


def submit_button(*children: rx.Component | str, **props) -> rx.Component:
    """A form's submit button, disabled until the page's scripts have run. The server renders
    each form, so a tap before then (a phone on a slow connection) would submit it the
    browser's way: a GET that reloads the page with what was typed in its URL and does nothing
    else. A disabled default button also stops Enter from submitting the form."""
    return rx.button(*children, type="submit", disabled=~rx.State.is_hydrated, **props)
