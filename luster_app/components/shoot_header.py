"""The shoot page's header (name, downloads, disclosure page, caption option) and its messages."""

from __future__ import annotations

import reflex as rx

from luster_app import routes
from luster_app.components.delivery import disclosure_controls, export_menu
from luster_app.components.shell import error_callout


def shoot_header(state: type, delivery: type, settings: type) -> rx.Component:
    """Name and address, the ZIP download with its choices, the disclosure page and the AB 723 caption option."""
    return rx.flex(
        rx.vstack(
            rx.link("← All shoots", href=routes.SHOOTS, size="2"),
            rx.heading(state.info.name, size="7", id="shoot-title"),
            rx.cond(state.info.address != "", rx.text(state.info.address, color_scheme="gray")),
            spacing="1",
        ),
        rx.spacer(),
        rx.vstack(
            rx.hstack(export_menu(delivery), disclosure_controls(delivery), wrap="wrap", align="center"),
            rx.text(
                rx.switch(checked=state.info.disclose, on_change=settings.set_disclose, size="1",
                          id="disclose-toggle"),
                " Caption sky, dusk, lawn and declutter photos “Digitally altered” on download",
                as_="label", size="1", color_scheme="gray", max_width="22em",
            ),
            rx.text(
                rx.switch(checked=state.info.auto_privacy, on_change=settings.set_auto_privacy, size="1",
                          id="auto-privacy-toggle"),
                " Auto privacy: blur faces and licence plates in this shoot's new enhancements",
                as_="label", size="1", color_scheme="gray", max_width="22em",
            ),
            align=rx.breakpoints(initial="start", sm="end"),
            spacing="2",
        ),
        direction=rx.breakpoints(initial="column", sm="row"),
        gap="3",
        width="100%",
    )


def messages(state: type) -> rx.Component:
    """What just happened: an error, a notice, or that credits are needed (with the way to billing)."""
    return rx.fragment(
        rx.cond(state.error != "", error_callout(state.error, id="shoot-error")),
        rx.cond(state.notice != "", rx.callout(state.notice, icon="info", id="shoot-notice", width="100%")),
        rx.cond(
            state.payment_needed != "",
            rx.callout(
                rx.vstack(
                    rx.text(state.payment_needed),
                    rx.link(rx.button(rx.icon("coins"), "Buy credits", size="2"), href=routes.BILLING,
                            id="payment-required-buy"),
                    spacing="2",
                ),
                icon="coins", color_scheme="amber", width="100%", id="payment-required",
            ),
        ),
    )
