"""The shoot page's delivery controls: the ZIP with its choices, and the public disclosure page."""

from __future__ import annotations

import reflex as rx

SIZE_CHOICES = [("full", "Full size"), ("mls", "MLS (2048 px)"), ("web", "Web (1280 px)")]


def export_menu(state: type) -> rx.Component:
    """"Download…": which versions, what size, all photos or the selected ones; then the ZIP."""
    return rx.popover.root(
        rx.popover.trigger(
            rx.button(rx.icon("download"), "Download…", disabled=~state.has_outputs, variant="soft",
                      id="download-menu", min_height="44px"),
        ),
        rx.popover.content(
            rx.vstack(
                rx.text("Versions", weight="medium", size="2", id="zip-versions-label"),
                rx.radio_group.root(
                    rx.radio_group.item("Latest of each photo", value="latest"),
                    rx.radio_group.item("Every version", value="all"),
                    value=state.zip_versions, on_change=state.set_zip_versions, id="zip-versions",
                    aria_labelledby="zip-versions-label", direction="column",
                ),
                rx.text("Size", weight="medium", size="2", id="zip-size-label"),
                rx.radio_group.root(
                    *[rx.radio_group.item(label, value=value) for value, label in SIZE_CHOICES],
                    value=state.zip_size, on_change=state.set_zip_size, id="zip-size",
                    aria_labelledby="zip-size-label", direction="column",
                ),
                rx.text(
                    rx.checkbox(checked=state.zip_selected_only, on_change=state.set_zip_selected_only,
                                disabled=state.selected.length() == 0, id="zip-selected-only"),
                    " Only the selected photos", as_="label", size="2",
                ),
                rx.text("Single downloads use the same size. Files are named by their place in the shoot.",
                        size="1", color_scheme="gray", max_width="18em"),
                rx.popover.close(
                    rx.button(rx.icon("folder-down"), "Download ZIP", on_click=state.download_zip, id="download-zip",
                              min_height="44px", width="100%"),
                ),
                spacing="2",
            ),
        ),
    )


def disclosure_controls(state: type) -> rx.Component:
    """AB 723: publish a page with the delivered photos, which are altered, and their originals."""
    return rx.cond(
        state.public_url != "",
        rx.vstack(
            rx.text("Public disclosure page (AB 723):", size="1", color_scheme="gray"),
            rx.hstack(
                rx.link(state.public_url, href=state.public_url, is_external=True, size="1", id="disclosure-link",
                        max_width="16em", overflow="hidden", text_overflow="ellipsis", white_space="nowrap"),
                rx.icon_button(rx.icon("copy", size=14), variant="ghost", aria_label="Copy the disclosure link",
                               on_click=rx.set_clipboard(state.public_url), id="disclosure-copy"),
                rx.button("Stop sharing", size="1", variant="ghost", color_scheme="red", on_click=state.stop_sharing,
                          id="disclosure-stop"),
                align="center",
                wrap="wrap",
            ),
            spacing="1",
            align=rx.breakpoints(initial="start", sm="end"),
        ),
        rx.button(rx.icon("globe"), "Share disclosure page", size="2", variant="outline", on_click=state.share,
                  disabled=~state.has_outputs, id="disclosure-share", min_height="44px",
                  title="A public page with the delivered photos, which were digitally altered, and each one's "
                        "unaltered original without location (California AB 723)"),
    )
