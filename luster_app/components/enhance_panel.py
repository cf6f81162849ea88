"""Selecting photos, picking a preset and its parameters, and the credit cost before anything is queued."""

from __future__ import annotations

import reflex as rx


def enhance_bar(state: type, enhance: type) -> rx.Component:
    """Selection controls (`state`'s) and the Enhance button (opening `enhance`'s dialog), which says what it will cost."""
    count = state.selected.length()
    return rx.flex(
        rx.hstack(
            rx.button("Select all", size="2", variant="soft", on_click=state.select_all, id="select-all",
                      disabled=state.ready_count == 0),
            rx.cond(count > 0, rx.button("Clear", size="2", variant="ghost", on_click=state.clear_selection)),
            rx.text(count, " selected", size="2", color_scheme="gray", id="selected-count"),
            align="center",
            spacing="2",
        ),
        rx.spacer(),
        rx.button(
            rx.icon("sparkles"),
            rx.cond(count > 0, rx.text("Enhance ", count, rx.cond(count == 1, " photo", " photos")), rx.text("Enhance")),
            size="3",
            on_click=enhance.open_enhance,
            disabled=count == 0,
            id="enhance-open",
        ),
        rx.cond(
            state.in_flight > 0,
            rx.hstack(
                rx.spinner(size="1"),
                rx.vstack(
                    rx.text(rx.cond(state.batch_summary != "", state.batch_summary,
                                    rx.text.span(state.in_flight, " in progress")), size="2", id="batch-progress"),
                    rx.progress(value=state.batch_done, max=rx.cond(state.batch_total > 0, state.batch_total, 1),
                                size="1", width="12em", aria_label="Photos of this batch done"),
                    spacing="1",
                ),
                align="center",
                id="in-flight",
            ),
        ),
        gap="3",
        align="center",
        wrap="wrap",
        width="100%",
    )


def _field(state: type, field) -> rx.Component:  # noqa: ANN001 - a Var of ParamField
    value = state.values[field.name]
    control = rx.match(
        field.kind,
        (
            "slider",
            rx.hstack(
                rx.slider(
                    default_value=[state.numbers[field.name]],
                    min=field.minimum,
                    max=field.maximum,
                    step=field.step,
                    on_value_commit=lambda v: state.set_value(field.name, v),
                    flex="1",
                    key=state.preset + field.name,
                ),
                rx.text(value, size="1", width="3em", align="right"),
                width="100%",
                align="center",
            ),
        ),
        ("switch", rx.switch(checked=value == "true", on_change=lambda v: state.set_value(field.name, v))),
        rx.select.root(
            rx.select.trigger(width="100%"),
            rx.select.content(rx.foreach(field.options, lambda o: rx.select.item(o.label, value=o.value))),
            value=value,
            on_change=lambda v: state.set_value(field.name, v),
        ),
    )
    return rx.vstack(
        rx.text(field.title, size="2", weight="medium"),
        control,
        rx.cond(field.hint != "", rx.text(field.hint, size="1", color_scheme="gray")),
        spacing="1",
        width="100%",
        class_name="preset-param",
    )


def _preset_picker(state: type) -> rx.Component:
    return rx.vstack(
        rx.text("Preset", size="2", weight="medium"),
        rx.select.root(
            rx.select.trigger(width="100%", id="preset-select"),
            rx.select.content(
                rx.foreach(
                    state.presets,
                    lambda p: rx.select.item(
                        rx.cond(p.available, p.title, p.title + " (needs the AI engine)"),
                        value=p.name,
                        disabled=~p.available,
                    ),
                )
            ),
            value=state.preset,
            on_change=state.choose_preset,
        ),
        rx.text(state.chosen.description, size="1", color_scheme="gray"),
        spacing="1",
        width="100%",
    )


def enhance_dialog(state: type) -> rx.Component:
    """Preset, parameters, and the cost; nothing is queued until "Enhance" here."""
    cost = state.targets.length()
    return rx.dialog.root(
        rx.dialog.content(
            rx.dialog.title(rx.cond(state.rerun_id != "", "Re-run this photo", "Enhance photos")),
            rx.vstack(
                _preset_picker(state),
                rx.foreach(state.chosen.fields, lambda f: _field(state, f)),
                rx.cond(
                    state.chosen.altering,
                    rx.text("This style changes the scene; with this shoot's option on, downloads are captioned "
                            "“Digitally altered”.", size="1", color_scheme="gray"),
                ),
                rx.callout(
                    rx.text(
                        "This uses ", rx.text.strong(cost, rx.cond(cost == 1, " credit", " credits")),
                        " (one per photo, charged only when it comes out). You have ",
                        state.credits_available, " available.",
                    ),
                    icon="coins",
                    id="enhance-cost",
                    width="100%",
                ),
                rx.flex(
                    rx.dialog.close(rx.button("Cancel", variant="soft", color_scheme="gray")),
                    rx.button(
                        rx.text("Enhance · ", cost, rx.cond(cost == 1, " credit", " credits")),
                        on_click=state.confirm_enhance,
                        loading=state.enhancing,
                        disabled=~state.chosen.available,
                        id="enhance-confirm",
                    ),
                    gap="3",
                    justify="end",
                    width="100%",
                ),
                spacing="4",
                width="100%",
            ),
            max_width="32em",
        ),
        open=state.enhance_open,
        on_open_change=state.set_enhance_open,
    )
