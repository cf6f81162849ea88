"""Before and after of one photo at full size, switched with a press-to-compare toggle."""

from __future__ import annotations

import reflex as rx

from luster_app.components.review import changes_control, outlined
from luster_app.pages.review_state import ReviewState


def compare_dialog(state: type) -> rx.Component:
    """The newest output, and the original in its place while "Original" is on (same frame, same size)."""
    image_url = rx.cond(state.showing_original, state.compare_before, state.compare_after)
    return rx.dialog.root(
        rx.dialog.content(
            rx.hstack(
                rx.dialog.title(state.compare_name, size="3", trim="both", margin="0", flex="1", min_width="0",
                                overflow="hidden", text_overflow="ellipsis", white_space="nowrap"),
                rx.dialog.close(rx.icon_button(rx.icon("x"), variant="ghost", aria_label="Close", id="compare-close")),
                width="100%",
                align="center",
            ),
            rx.segmented_control.root(
                rx.segmented_control.item("Enhanced", value="after"),
                rx.segmented_control.item("Original", value="before"),
                value=rx.cond(state.showing_original, "before", "after"),
                on_change=lambda _v: state.toggle_original(),
                id="compare-toggle",
                margin_y="0.75em",
            ),
            rx.box(
                rx.cond(
                    image_url != "",
                    outlined(rx.image(
                        src=image_url,
                        alt=rx.cond(state.showing_original, "Original", "Enhanced"),
                        # The whole photo in view, as large as the screen allows; "Open full size" for pixels.
                        max_width="100%",
                        max_height="72vh",
                        width="auto",
                        height="auto",
                        display="block",
                        margin_x="auto",
                        id="compare-image",
                        custom_attrs={"data-showing": rx.cond(state.showing_original, "original", "enhanced")},
                    ), ReviewState.areas,
                    # "What changed": the areas the AI redrew, over the enhanced photo (or the original).
                    visible=ReviewState.show_changes & (ReviewState.changes_for == state.compare_after)),
                    rx.center(rx.spinner(size="3"), height="12em"),
                ),
                width="100%",
            ),
            changes_control(state.compare_after),
            rx.hstack(
                rx.text("Tap Original to see the photo as it was shot.", size="1", color_scheme="gray"),
                rx.link("Open full size", href=image_url, is_external=True, size="1", id="compare-full-size"),
                justify="between",
                width="100%",
                margin_top="0.5em",
                wrap="wrap",
            ),
            max_width="min(96vw, 1400px)",
            width="96vw",
            padding=rx.breakpoints(initial="0.75em", sm="1.25em"),
        ),
        open=state.compare_open,
        on_open_change=state.set_compare_open,
    )
