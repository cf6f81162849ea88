"""The page shell: top navigation and content column that every page plugs into."""

from __future__ import annotations

import reflex as rx

from luster_app import routes

NAV_LINKS = [("Shoots", routes.SHOOTS), ("Billing", routes.BILLING), ("Account", routes.ACCOUNT)]


def navbar() -> rx.Component:
    return rx.hstack(
        rx.link(rx.heading("Luster", size="6"), href=routes.LANDING, underline="none"),
        rx.spacer(),
        rx.hstack(
            *[rx.link(label, href=href, id=f"nav-{label.lower()}") for label, href in NAV_LINKS],
            rx.link(rx.button("Sign in", variant="soft"), href=routes.LOGIN, id="nav-sign-in"),
            spacing="4",
            align="center",
            wrap="wrap",
        ),
        padding_x="1.5em",
        padding_y="1em",
        border_bottom="1px solid var(--gray-5)",
        width="100%",
        align="center",
    )


def page_shell(*children: rx.Component) -> rx.Component:
    """Navigation on top, then the page's content in a readable column."""
    return rx.box(
        navbar(),
        rx.container(rx.vstack(*children, spacing="5", width="100%"), size="4", padding_y="2em"),
        width="100%",
    )
