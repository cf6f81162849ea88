"""A one-counter app: the smallest state that shows a session surviving a move between replicas."""

import os

import reflex as rx


class CounterState(rx.State):
    count: int = 0
    # The port of the replica that handled the last event, so a test sees who served it.
    served_by: str = ""

    @rx.event
    def increment(self) -> None:
        self.count += 1
        self.served_by = os.environ.get("PORT", "")


def index() -> rx.Component:
    return rx.vstack(
        rx.heading(CounterState.count, id="count"),
        rx.text(CounterState.served_by, id="served-by"),
        rx.button("+1", on_click=CounterState.increment, id="increment"),
    )


app = rx.App()
app.add_page(index, route="/")
