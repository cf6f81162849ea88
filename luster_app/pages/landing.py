"""The landing page: what Luster does, for whom, and how to start."""

import reflex as rx

from luster_app import routes
from luster_app.components.shell import page_shell
from luster_app.state import AuthState

STEPS = [
    ("Upload the shoot", "Drop a listing's photos from your desktop, or pick them from your phone's camera roll."),
    ("Pick a style", "Enhance, twilight dusk, sky replacement or lawn cleanup, with a few simple controls."),
    ("Download", "Listing-ready images at full resolution in minutes. Location data never leaves with them."),
]


def landing() -> rx.Component:
    return page_shell(
        rx.heading("Listing-ready photos, minutes after the shoot", size="8", id="landing-title"),
        rx.text(
            "Luster turns a real-estate photographer's raw listing photos into polished, "
            "listing-ready images. One credit per finished photo; nothing charged if it fails.",
            size="4",
            color_scheme="gray",
        ),
        rx.grid(
            *[
                rx.card(rx.heading(title, size="4"), rx.text(body, color_scheme="gray"))
                for title, body in STEPS
            ],
            columns=rx.breakpoints(initial="1", sm="3"),
            spacing="4",
            width="100%",
        ),
        rx.cond(
            AuthState.signed_in,
            rx.link(rx.button("Go to your shoots", size="3"), href=routes.SHOOTS, id="landing-shoots"),
            rx.link(rx.button("Sign in with your email", size="3"), href=routes.LOGIN, id="landing-sign-in"),
        ),
    )
