"""The shoot's photos: thumbnail, selection, the latest job's status, and each output version."""

from __future__ import annotations

from collections.abc import Callable

import reflex as rx

from luster_app.components.shell import empty_state
from luster_app.pages.review_state import ReviewState

STATUS_COLORS = (("queued", "gray"), ("processing", "blue"), ("succeeded", "green"), ("failed", "red"),
                 ("needs_review", "amber"), "gray")


def _status(photo, job) -> rx.Component:  # noqa: ANN001 - Vars of PhotoCard and CardProgress
    job_badge = rx.cond(
        job.job_status != "",
        rx.badge(
            rx.cond(job.job_status == "processing", rx.spinner(size="1")),
            job.job_status_word,
            color_scheme=rx.match(job.job_status, *STATUS_COLORS),
            class_name="photo-status",
            custom_attrs={"data-status": job.job_status},
        ),
        rx.badge("Not enhanced", variant="outline", color_scheme="gray", class_name="photo-status"),
    )
    return rx.match(
        photo.upload_status,
        ("rejected", rx.badge("Rejected", color_scheme="red", class_name="photo-status")),
        ("pending", rx.badge(rx.spinner(size="1"), "Uploading", color_scheme="gray", class_name="photo-status")),
        job_badge,
    )


def _output_row(state: type, photo, output, download: Callable) -> rx.Component:  # noqa: ANN001
    return rx.hstack(
        rx.text(output.label, size="1", weight="medium"),
        rx.cond(output.altered, rx.tooltip(rx.icon("wand_sparkles", size=12), content="Scene-altering style")),
        rx.text("from ", photo.filename, size="1", color_scheme="gray", overflow="hidden",
                text_overflow="ellipsis", white_space="nowrap", flex="1", min_width="0"),
        rx.icon_button(rx.icon("download", size=14), size="1", variant="ghost", title="Download this version",
                       on_click=download(output.id), class_name="output-download"),
        width="100%",
        align="center",
        spacing="2",
        class_name="output-row",
    )


def _card(state: type, photo, delete_button: Callable | None, download: Callable, compare: Callable,  # noqa: ANN001 - a Var of PhotoCard
          rerun: Callable) -> rx.Component:
    # The card's job: sent apart from the card, and only the cards whose job moved (see ShootState).
    job = state.moved.get(photo.id, state.progress[photo.id])
    thumb_url = rx.cond(job.cover_url != "", job.cover_url, photo.thumb_url)
    ready = photo.upload_status == "ready"
    has_output = job.latest_output_id != ""
    return rx.card(
        rx.vstack(
            rx.box(
                rx.cond(
                    thumb_url != "",
                    rx.image(src=thumb_url, alt=photo.filename, width="100%", height="11em", object_fit="cover",
                             border_radius="var(--radius-2)", class_name="photo-thumb",
                             on_click=rx.cond(has_output, compare(photo.id), state.toggle_selected(photo.id)),
                             cursor="pointer"),
                    rx.center(rx.icon("image_off", size=32, color="var(--gray-8)"), width="100%", height="11em",
                              background="var(--gray-3)", border_radius="var(--radius-2)"),
                ),
                rx.cond(
                    ready,
                    rx.checkbox(
                        checked=state.selected.contains(photo.id),
                        on_change=lambda _checked: state.toggle_selected(photo.id),
                        size="3",
                        aria_label="Select " + photo.filename,
                        class_name="photo-select",
                        position="absolute",
                        top="0.5em",
                        left="0.5em",
                        background="var(--color-panel-solid)",
                        border_radius="var(--radius-1)",
                    ),
                ),
                position="relative",
                width="100%",
            ),
            rx.hstack(
                rx.text(photo.filename, size="2", weight="medium", overflow="hidden",
                        text_overflow="ellipsis", white_space="nowrap", flex="1", min_width="0",
                        class_name="photo-name"),
                _status(photo, job),
                width="100%",
                align="center",
            ),
            rx.cond(photo.dimensions != "", rx.text(photo.dimensions, size="1", color_scheme="gray")),
            rx.cond(photo.reject_reason != "", rx.text(photo.reject_reason, size="1", color_scheme="red")),
            rx.cond(
                job.job_error != "",
                rx.text(job.job_error, " ", rx.link("What now?", href="/jobs/" + job.job_id, size="1"),
                        size="1", color_scheme="red", class_name="photo-error"),
            ),
            rx.cond(
                ready,
                rx.flex(
                    rx.button(rx.icon("columns_2", size=14), "Compare", size="1", variant="soft", disabled=~has_output,
                              on_click=compare(photo.id), class_name="photo-compare"),
                    rx.button(rx.icon("download", size=14), "Download", size="1", variant="soft", disabled=~has_output,
                              on_click=download(job.latest_output_id), class_name="photo-download"),
                    rx.cond(
                        job.job_status != "",
                        rx.button(rx.icon("rotate_ccw", size=14), "Re-run", size="1", variant="soft",
                                  on_click=rerun(photo.id), class_name="photo-rerun"),
                        rx.button(rx.icon("sparkles", size=14), "Enhance", size="1", variant="soft",
                                  on_click=rerun(photo.id), class_name="photo-rerun"),
                    ),
                    rx.cond(job.job_status == "needs_review",
                            rx.button(rx.icon("scan_search", size=14), "Review edit", size="1", color_scheme="amber",
                                      on_click=ReviewState.open_review(job.job_id), class_name="photo-review")),
                    rx.cond(job.job_id != "", rx.link("Job details", href="/jobs/" + job.job_id, size="1",
                                                        class_name="photo-job-link")),
                    delete_button(photo) if delete_button else rx.fragment(),
                    gap="2",
                    wrap="wrap",
                    align="center",
                ),
            ),
            rx.cond(
                job.outputs.length() > 0,
                rx.vstack(rx.foreach(job.outputs, lambda output: _output_row(state, photo, output, download)), spacing="1",
                          width="100%"),
            ),
            spacing="2",
        ),
        class_name="photo-card",
        custom_attrs={"data-filename": photo.filename},
        width="100%",
    )


def photo_grid(state: type, *, download: Callable, compare: Callable, rerun: Callable,
               delete_button: Callable | None = None) -> rx.Component:
    """A card per photo, or what to do first when the shoot is still empty; `delete_button(photo)`
    makes each card's delete control, `download(output_id)`, `compare(photo_id)` and `rerun(photo_id)`
    the events of its download, compare and Enhance/Re-run buttons."""
    return rx.cond(
        state.photos.length() > 0,
        rx.grid(
            rx.foreach(state.photos, lambda photo: _card(state, photo, delete_button, download, compare, rerun)),
            columns=rx.breakpoints(initial="1", xs="2", md="3", lg="4"),
            spacing="4",
            width="100%",
            id="photo-grid",
        ),
        empty_state("images", "No photos yet", "Upload this listing's photos above; they appear here once they arrive.",
                    id="photos-empty"),
    )
