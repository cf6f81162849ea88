"""The upload zone: drop photos or pick them (the camera roll on a phone), with a row per file."""

from __future__ import annotations

from collections.abc import Callable

import reflex as rx

# Phones offer the camera roll for image types; HEIC is listed so iPhones hand over the originals.
# Camera RAW files are listed by extension: systems disagree on (or lack) their types.
ACCEPT = (
    "image/jpeg,image/png,image/webp,image/heic,image/heif,.jpg,.jpeg,.png,.webp,.heic,.heif,"
    ".dng,.cr2,.cr3,.nef,.arw,.raf,.orf,.rw2"
)
STATE_WORDS = {
    "queued": "Waiting",
    "uploading": "Uploading",
    "checking": "Checking",
    "done": "Uploaded",
    "failed": "Failed",
    "duplicate": "Already in this shoot",
}


def _row(state: type, row, retry: Callable | None) -> rx.Component:  # noqa: ANN001 - a Var of UploadRow
    return rx.box(
        rx.hstack(
            rx.text(row.name, size="2", weight="medium", overflow="hidden", text_overflow="ellipsis",
                    white_space="nowrap", flex="1", min_width="0"),
            rx.badge(
                rx.match(row.state, *STATE_WORDS.items(), row.state),
                color_scheme=rx.match(row.state, ("done", "green"), ("failed", "red"), ("duplicate", "amber"), "gray"),
                class_name="upload-state",
            ),
            width="100%",
            align="center",
        ),
        rx.cond(
            (row.state == "uploading") | (row.state == "queued") | (row.state == "checking"),
            rx.progress(value=row.percent, max=100, size="1", class_name="upload-progress", margin_top="0.35em"),
        ),
        rx.cond(row.error != "", rx.text(row.error, size="1", color_scheme="red", class_name="upload-error")),
        rx.cond(
            row.state == "duplicate",
            rx.button("Upload anyway", size="1", variant="soft", on_click=state.insist(row.key),
                      class_name="upload-insist", margin_top="0.35em"),
        ),
        rx.cond(
            (row.state == "failed") & row.retryable,
            rx.button("Retry", size="1", variant="soft", on_click=retry(row.key), class_name="upload-retry",
                      margin_top="0.35em"),
        ) if retry else rx.fragment(),
        width="100%",
        padding_y="0.4em",
        border_bottom="1px solid var(--gray-4)",
        class_name="upload-row",
        custom_attrs={"data-state": row.state},
    )


def upload_zone(state: type, input_id: str, retry: Callable | None = None) -> rx.Component:
    """Drag-and-drop (desktop) and a picker for many files; the bytes go straight to storage.
    `retry(key)`: the event that sends a failed file again."""
    return rx.card(
        rx.el.label(
            rx.vstack(
                rx.icon("cloud_upload", size=32, color="var(--accent-9)"),
                rx.text("Drop photos here, or tap to choose", weight="bold", align="center"),
                rx.text("JPEG, HEIC, PNG or WebP up to 10 MB each, camera RAW (DNG, CR2, CR3, NEF, ARW, RAF, ORF, "
                        "RW2) up to 120 MB. From a phone, pick them from your camera roll.",
                        size="2", color_scheme="gray", align="center"),
                align="center",
                spacing="2",
                padding="1.25em",
                border="2px dashed var(--gray-6)",
                border_radius="var(--radius-3)",
                width="100%",
                cursor="pointer",
                _hover={"border_color": "var(--accent-8)", "background": "var(--accent-2)"},
            ),
            rx.el.input(
                type="file",
                id=input_id,
                multiple=True,
                accept=ACCEPT,
                on_change=state.files_chosen,
                style={"position": "absolute", "width": "1px", "height": "1px", "opacity": "0", "overflow": "hidden"},
            ),
            html_for=input_id,
            custom_attrs={"data-upload-input": input_id},
            id="upload-zone",
            style={"display": "block", "position": "relative"},
        ),
        rx.cond(
            state.uploads.length() > 0,
            rx.vstack(
                rx.foreach(state.uploads, lambda row: _row(state, row, retry)),
                rx.cond(
                    ~state.uploads_active,
                    rx.button("Clear finished", size="1", variant="ghost", on_click=state.clear_uploads,
                              id="upload-clear"),
                ),
                spacing="0",
                width="100%",
                margin_top="0.75em",
                id="upload-list",
            ),
        ),
        width="100%",
    )
