"""Honest edits: redrawn areas outlined over a photo, and the review dialog of a held edit."""

from __future__ import annotations

import reflex as rx

from luster_app.pages.review_state import ReviewState


def outlined(image: rx.Component, areas: rx.Var, *, visible: rx.Var | bool = True) -> rx.Component:
    """`image` with each redrawn area outlined: red outside the preset's region, amber inside."""
    boxes = rx.foreach(
        areas,
        lambda area: rx.box(
            position="absolute", left=area.left, top=area.top, width=area.width, height=area.height,
            border=rx.cond(area.allowed, "2px dashed var(--amber-9)", "3px solid var(--red-9)"),
            box_shadow="0 0 0 1px rgba(255,255,255,0.7)", pointer_events="none",
            class_name=rx.cond(area.allowed, "changed-area changed-area-allowed", "changed-area changed-area-outside"),
        ),
    )
    # The wrapper shrinks to the image, so percentages of it are percentages of the photo.
    return rx.box(image, rx.cond(visible, boxes), position="relative", display="block", width="fit-content",
                  max_width="100%", margin_x="auto")


def _photo(src: rx.Var, alt: str, id: str) -> rx.Component:
    return rx.image(src=src, alt=alt, max_width="100%", max_height="60vh", width="auto", height="auto",
                    display="block", id=id)


def changes_control(output_id: rx.Var) -> rx.Component:
    """The compare dialog's "What changed" switch and its one-line summary, for the version `output_id`."""
    showing = ReviewState.show_changes & (ReviewState.changes_for == output_id)
    return rx.hstack(
        rx.button(rx.icon("scan_search", size=14), rx.cond(showing, "Hide changes", "What changed"), size="1",
                  variant=rx.cond(showing, "solid", "soft"), on_click=ReviewState.toggle_changes, id="compare-changes"),
        rx.cond(showing, rx.text(ReviewState.changes_summary, size="1", id="compare-changes-summary")),
        align="center", wrap="wrap", spacing="2",
    )


def review_dialog() -> rx.Component:
    """A held edit, what it redrew outlined, and the owner's Accept or Reject."""
    return rx.dialog.root(
        rx.dialog.content(
            rx.dialog.title("Review this edit", size="4"),
            rx.dialog.description(
                "The AI changed more than this style should: the areas outlined in red are outside the part of "
                "the photo it was asked to edit. Nothing has been charged. Accept to keep and download it "
                "(1 credit), or reject it (nothing charged) and run it again.",
                size="2", margin_bottom="0.75em",
            ),
            rx.cond(
                ReviewState.review_url != "",
                outlined(_photo(ReviewState.review_url, "Edit waiting for review", "review-image"),
                         ReviewState.review_areas),
                rx.center(rx.spinner(size="3"), height="12em"),
            ),
            rx.text(ReviewState.review_summary, size="2", margin_top="0.5em", id="review-summary"),
            rx.cond(ReviewState.review_error != "",
                    rx.callout(ReviewState.review_error, color_scheme="red", margin_top="0.5em", id="review-error")),
            rx.flex(
                rx.button("Reject (nothing charged)", color_scheme="red", variant="soft", on_click=ReviewState.reject,
                          loading=ReviewState.deciding, id="review-reject"),
                rx.button("Accept (1 credit)", on_click=ReviewState.accept, loading=ReviewState.deciding,
                          id="review-accept"),
                justify="end", gap="3", margin_top="1em", wrap="wrap",
            ),
            max_width="min(96vw, 1100px)", width="96vw",
            padding=rx.breakpoints(initial="0.75em", sm="1.25em"),
        ),
        open=ReviewState.review_open,
        on_open_change=ReviewState.set_review_open,
    )
