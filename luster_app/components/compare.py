"""Before and after of one photo at full size, split by a slider: the original on the left of the
split, the enhanced version on the right. Drag or tap anywhere on the photo to move the split, or
focus it and use the arrow keys (Home and End jump to the edges); any version can be picked.

The split lives in the browser (a client-side state variable), so dragging never waits on the
server; the slider is a native range input stretched over the photo, which gives touch, mouse and
keyboard for free and tells screen readers what it is.
"""

from __future__ import annotations

import reflex as rx
from reflex.experimental.client_state import ClientStateVar

from luster_app.components.review import changes_control, outlined
from luster_app.pages.review_state import ReviewState

HANDLE_PX = 44  # the grip on the split: a touch target


def _label(text: str, side: str) -> rx.Component:
    return rx.badge(text, variant="solid", color_scheme="gray", high_contrast=True, position="absolute", top="0.5em",
                    pointer_events="none", **{side: "0.5em"})


def compare_slider(before: rx.Var, after: rx.Var) -> rx.Component:
    """The two images, one frame: the original clipped to the left of the split, over the enhanced one."""
    split = ClientStateVar.create("compare_split", default=50)
    return rx.box(
        rx.image(src=after, alt="Enhanced version", id="compare-image", draggable=False,
                 max_width="100%", max_height="72vh", width="auto", height="auto", display="block",
                 custom_attrs={"data-showing": "enhanced"}),
        rx.cond(
            before != "",
            rx.box(
                rx.image(src=before, alt="Original photo", id="compare-before", draggable=False,
                         width="100%", height="100%", display="block", object_fit="fill"),
                position="absolute", inset="0", pointer_events="none", id="compare-before-clip",
                clip_path=f"inset(0 calc(100% - {split.value}%) 0 0)",
            ),
        ),
        _label("Original", "left"),
        _label("Enhanced", "right"),
        rx.box(
            rx.box(
                rx.icon("move_horizontal", size=20, color="var(--gray-12)"),
                width=f"{HANDLE_PX}px", height=f"{HANDLE_PX}px", border_radius="50%", background="white",
                box_shadow="0 1px 4px rgba(0,0,0,.5)", display="flex", align_items="center", justify_content="center",
                position="absolute", top="50%", left="50%", transform="translate(-50%, -50%)",
                class_name="compare-grip",
            ),
            position="absolute", top="0", bottom="0", left=f"{split.value}%", width="2px", margin_left="-1px",
            background="white", box_shadow="0 0 0 1px rgba(0,0,0,.35)", pointer_events="none",
            id="compare-split",
        ),
        rx.el.input(
            type="range", min=0, max=100, step=1, value=split.value, on_change=split.set,
            aria_label="Split between the original (left) and the enhanced version (right)",
            id="compare-range", class_name="compare-range",
            # Over the whole photo and invisible: a tap or drag anywhere moves the split there.
            style={
                "position": "absolute", "inset": "0", "width": "100%", "height": "100%", "margin": "0",
                "opacity": "0", "cursor": "ew-resize", "touch-action": "pan-y pinch-zoom",
                "&:focus-visible ~ #compare-focus": {"display": "block"},
            },
        ),
        # The range itself is invisible; its keyboard focus shows as a ring round the photo.
        rx.box(id="compare-focus", display="none", position="absolute", inset="0", pointer_events="none",
               outline="3px solid var(--accent-9)", outline_offset="2px"),
        position="relative",
        display="block",
        width="fit-content",
        max_width="100%",
        margin_x="auto",
        line_height="0",
        user_select="none",
        id="compare-frame",
    )


def compare_dialog(state: type) -> rx.Component:
    """The compare dialog of `state` (ShootCompareState): version picker, slider, "What changed"."""
    return rx.dialog.root(
        rx.dialog.content(
            rx.hstack(
                rx.dialog.title(state.compare_name, size="3", trim="both", margin="0", flex="1", min_width="0",
                                overflow="hidden", text_overflow="ellipsis", white_space="nowrap"),
                rx.dialog.close(rx.icon_button(rx.icon("x"), variant="ghost", aria_label="Close", id="compare-close",
                                               size="3")),
                width="100%",
                align="center",
            ),
            rx.hstack(
                rx.text("Version", as_="label", size="2", html_for="compare-version"),
                rx.select.root(
                    rx.select.trigger(id="compare-version", aria_label="Version to compare with the original"),
                    rx.select.content(rx.foreach(state.compare_versions,
                                                 lambda o: rx.select.item(o.label, value=o.id))),
                    value=state.compare_output_id,
                    on_change=state.pick_version,
                ),
                align="center",
                spacing="2",
                margin_y="0.75em",
            ),
            rx.box(
                rx.cond(
                    state.compare_after != "",
                    outlined(compare_slider(state.compare_before, state.compare_after), ReviewState.areas,
                             # "What changed": the areas the AI redrew, over the photo.
                             visible=ReviewState.show_changes & (ReviewState.changes_for == state.compare_output_id)),
                    rx.center(rx.spinner(size="3"), height="12em"),
                ),
                width="100%",
            ),
            changes_control(state.compare_output_id),
            rx.hstack(
                rx.text("Drag or tap the photo, or use the arrow keys, to move the split.", size="1",
                        color_scheme="gray"),
                rx.hstack(
                    rx.link("Original full size", href=state.compare_before, is_external=True, size="1",
                            id="compare-full-size-original"),
                    rx.link("Enhanced full size", href=state.compare_after, is_external=True, size="1",
                            id="compare-full-size"),
                    spacing="3",
                ),
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
