"""The shoot page's bracket controls: group the selection, suggested groups, a group's badge and Ungroup."""

from __future__ import annotations

import reflex as rx


def group_button(state: type) -> rx.Component:
    """Shown while 2 to 9 single photos are selected."""
    return rx.cond(
        state.can_group,
        rx.button(rx.icon("layers", size=16), "Group as bracket", size="2", variant="soft", on_click=state.group_selected,
                  id="group-bracket", title="Merge these exposures into one photo (one credit when enhanced)"),
    )


def suggestions(state: type) -> rx.Component:
    """The groups the photos' EXIF suggests, each one tap to accept."""
    return rx.cond(
        state.suggestions.length() > 0,
        rx.callout.root(
            rx.callout.icon(rx.icon("layers")),
            rx.vstack(
                rx.text("These look like exposure brackets (shot seconds apart at different exposures):", size="2"),
                rx.foreach(
                    state.suggestions,
                    lambda suggestion: rx.flex(
                        rx.text(suggestion.label, size="2", flex="1", min_width="0"),
                        rx.button("Group", size="1", on_click=state.accept_suggestion(suggestion.ids),
                                  class_name="suggestion-accept"),
                        gap="2", align="center", wrap="wrap", width="100%",
                    ),
                ),
                spacing="2",
                width="100%",
            ),
            id="bracket-suggestions",
            width="100%",
        ),
    )


def card_controls(state: type, photo, delete_button: rx.Component) -> rx.Component:  # noqa: ANN001 - a Var of PhotoCard
    """A group's card: a badge and Ungroup instead of Delete; a frame's: a badge, no Delete (ungroup first)."""
    return rx.cond(
        photo.is_group,
        rx.button(rx.icon("ungroup", size=14), "Ungroup", size="1", variant="soft", color_scheme="gray",
                  on_click=state.ungroup(photo.bracket_id), class_name="bracket-ungroup"),
        rx.cond(photo.bracket_id != "", rx.badge(rx.icon("layers", size=12), "In a bracket", class_name="bracket-frame"),
                delete_button),
    )
