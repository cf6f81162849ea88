"""The shoot page's controls for owning one's work: rename or delete the shoot, delete a photo
(after a confirmation that names what goes), cancel the queued batch, and the uploads that never
arrived. `own` is the page's ShootOwnState."""

from __future__ import annotations

import reflex as rx


def shoot_actions(own: type) -> rx.Component:
    """Rename and delete buttons for the header, with their dialogs."""
    return rx.hstack(
        rx.button(rx.icon("pencil", size=14), "Rename", size="1", variant="soft", on_click=own.open_rename,
                  id="shoot-rename"),
        rx.button(rx.icon("trash_2", size=14), "Delete shoot", size="1", variant="soft", color_scheme="red",
                  on_click=own.set_delete_shoot_open(True), id="shoot-delete"),
        _rename_dialog(own),
        _delete_shoot_dialog(own),
        spacing="2",
    )


def _rename_dialog(own: type) -> rx.Component:
    return rx.dialog.root(
        rx.dialog.content(
            rx.dialog.title("Rename the shoot"),
            rx.vstack(
                rx.text("Name", size="2", weight="medium"),
                # Uncontrolled (default_value): the dialog's content mounts on open, with the current name.
                rx.input(default_value=own.new_name, on_change=own.set_new_name, id="rename-name", width="100%"),
                rx.text("Address (optional)", size="2", weight="medium"),
                rx.input(default_value=own.new_address, on_change=own.set_new_address, id="rename-address", width="100%"),
                rx.hstack(
                    rx.dialog.close(rx.button("Cancel", variant="soft", color_scheme="gray")),
                    rx.button("Save", on_click=own.save_rename, id="rename-save"),
                    justify="end",
                    width="100%",
                ),
                spacing="2",
            ),
            max_width="28em",
        ),
        open=own.rename_open,
        on_open_change=own.set_rename_open,
    )


def _delete_shoot_dialog(own: type) -> rx.Component:
    return rx.alert_dialog.root(
        rx.alert_dialog.content(
            rx.alert_dialog.title("Delete this shoot?"),
            rx.alert_dialog.description(
                "Every photo in it, every enhanced version and every stored file is deleted for good. "
                "Photos still waiting to be enhanced are canceled and their credits released."
            ),
            rx.hstack(
                rx.alert_dialog.cancel(rx.button("Keep it", variant="soft", color_scheme="gray")),
                rx.alert_dialog.action(rx.button("Delete shoot", color_scheme="red", on_click=own.confirm_delete_shoot,
                                                 id="shoot-delete-confirm")),
                justify="end",
                margin_top="1em",
            ),
            max_width="28em",
        ),
        open=own.delete_shoot_open,
        on_open_change=own.set_delete_shoot_open,
    )


def delete_photo_button(own: type, photo) -> rx.Component:  # noqa: ANN001 - a Var of PhotoCard
    return rx.button(rx.icon("trash_2", size=14), "Delete", size="1", variant="soft", color_scheme="red",
                     on_click=own.ask_delete(photo.id, photo.filename), class_name="photo-delete")


def delete_photo_dialog(own: type) -> rx.Component:
    """Asks before deleting the photo `own.delete_id`, naming what goes with it."""
    return rx.alert_dialog.root(
        rx.alert_dialog.content(
            rx.alert_dialog.title("Delete ", own.delete_name, "?"),
            rx.alert_dialog.description(
                "The photo, all its enhanced versions and their files are deleted for good. "
                "If it is waiting to be enhanced, that is canceled and the credit released."
            ),
            rx.hstack(
                rx.alert_dialog.cancel(rx.button("Keep it", variant="soft", color_scheme="gray")),
                rx.alert_dialog.action(rx.button("Delete photo", color_scheme="red", on_click=own.confirm_delete,
                                                 id="photo-delete-confirm")),
                justify="end",
                margin_top="1em",
            ),
            max_width="28em",
        ),
        open=own.delete_id != "",
        on_open_change=own.set_delete_open,
    )


def cancel_queued_button(own: type) -> rx.Component:
    """"Cancel queued (N)" while photos of the shoot wait for a worker."""
    count = own.queued_count
    return rx.cond(
        count > 0,
        rx.button(rx.icon("circle_x", size=14), "Cancel queued (", count, ")", size="2", variant="soft",
                  color_scheme="red", on_click=own.cancel_queued, id="cancel-queued"),
    )


def refused_uploads(own: type) -> rx.Component:
    """Uploads that never arrived, each with its reason, until the photographer dismisses them."""
    return rx.cond(
        own.refused.length() > 0,
        rx.callout(
            rx.vstack(
                rx.text("These files did not arrive:", weight="medium"),
                rx.foreach(
                    own.refused,
                    lambda upload: rx.hstack(
                        rx.text(rx.text.strong(upload.filename), " — ", upload.reason, size="2", flex="1", min_width="0"),
                        rx.button("Dismiss", size="1", variant="soft", on_click=own.dismiss_refused(upload.id),
                                  class_name="refused-dismiss"),
                        width="100%",
                        align="center",
                        class_name="refused-upload",
                    ),
                ),
                spacing="2",
                width="100%",
            ),
            icon="triangle_alert",
            color_scheme="red",
            width="100%",
            id="refused-uploads",
        ),
    )
