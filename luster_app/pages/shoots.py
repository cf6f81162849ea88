"""/shoots: the photographer's listings, newest first, and a form to start a new one."""

from __future__ import annotations

import asyncio
import dataclasses
import uuid

import reflex as rx

from luster_app import routes
from luster_app.components.shell import empty_state, error_callout, loading, page_shell, submit_button
from luster_app.context import AppContext
from luster_app.services import gallery, shoots
from luster_app.services.errors import ServiceError
from luster_app.state import AuthState, app_context


@dataclasses.dataclass
class ShootCard:
    id: str
    name: str
    address: str
    created: str
    photo_count: int
    cover_url: str
    summary: str


def _cards(context: AppContext, user_id: uuid.UUID) -> list[ShootCard]:
    with context.session() as session:
        summaries = shoots.list_shoots(
            session=session, storage=context.storage, settings=context.settings, user_id=user_id
        )
        progress = gallery.progress_by_shoot(session=session, user_id=user_id)
    return [
        ShootCard(
            id=str(s.id),
            name=s.name,
            address=s.address or "",
            created=s.created_at.strftime("%b %d, %Y"),
            photo_count=s.photo_count,
            cover_url=s.cover_thumb_url or "",
            summary=progress.get(s.id, gallery.ShootProgress()).summary,
        )
        for s in summaries
    ]


def _create(context: AppContext, user_id: uuid.UUID, name: str, address: str) -> str:
    with context.session() as session:
        return str(shoots.create_shoot(session=session, user_id=user_id, name=name, address=address).id)


class ShootsState(AuthState):
    """The shoot cards and the new-shoot form."""

    cards: list[ShootCard] = []
    loaded: bool = False
    error: str = ""
    creating: bool = False

    @rx.event
    async def load(self):
        """Show the user's shoots."""
        user = self._signed_in_user()
        if user is None:
            yield self._sign_in_first()
            return
        self._load_credits(user)
        self.error = ""
        try:
            self.cards = await asyncio.to_thread(_cards, app_context(), user.id)
        except ServiceError as exc:
            self.error = str(exc)
        self.loaded = True

    @rx.event
    async def create(self, form_data: dict):
        """Create a shoot and open it, ready for uploads."""
        user = self._signed_in_user()
        if user is None:
            yield self._sign_in_first()
            return
        self.creating, self.error = True, ""
        yield
        try:
            shoot_id = await asyncio.to_thread(
                _create, app_context(), user.id, str(form_data.get("name", "")), str(form_data.get("address", ""))
            )
        except ServiceError as exc:
            self.error = str(exc)
            return
        finally:
            self.creating = False
        yield rx.redirect(routes.shoot(shoot_id))


def _new_shoot_form() -> rx.Component:
    return rx.card(
        rx.form(
            rx.flex(
                rx.input(name="name", placeholder="Shoot name, e.g. 12 Oak Street", required=True, max_length=200,
                         size="3", flex="2 1 14em", id="shoot-name"),
                rx.input(name="address", placeholder="Address (optional)", max_length=500, size="3",
                         flex="2 1 14em", id="shoot-address"),
                submit_button(rx.icon("plus"), "New shoot", size="3", loading=ShootsState.creating, id="shoot-create"),
                spacing="3",
                wrap="wrap",
                width="100%",
            ),
            on_submit=ShootsState.create,
            reset_on_submit=True,
            width="100%",
        ),
        width="100%",
    )


def _card(card: ShootCard) -> rx.Component:
    return rx.link(
        rx.card(
            rx.vstack(
                rx.cond(
                    card.cover_url != "",
                    rx.image(src=card.cover_url, alt=card.name, width="100%", height="10em", object_fit="cover",
                             border_radius="var(--radius-2)"),
                    rx.center(rx.icon("image", size=40, color="var(--gray-8)"), width="100%", height="10em",
                              background="var(--gray-3)", border_radius="var(--radius-2)"),
                ),
                rx.heading(card.name, size="4", class_name="shoot-card-name"),
                rx.cond(card.address != "", rx.text(card.address, size="2", color_scheme="gray")),
                rx.hstack(
                    rx.badge(card.photo_count, " photos", variant="soft", class_name="shoot-card-count"),
                    rx.text(card.created, size="1", color_scheme="gray"),
                    justify="between",
                    width="100%",
                ),
                rx.text(card.summary, size="2", class_name="shoot-card-status"),
                spacing="2",
            ),
            width="100%",
        ),
        href="/shoots/" + card.id,
        underline="none",
        class_name="shoot-card",
    )


def shoots_page() -> rx.Component:
    """/shoots: a new-shoot form, then a card per shoot (cover, photo count, job status)."""
    return page_shell(
        rx.heading("Your shoots", size="7", id="shoots-title"),
        _new_shoot_form(),
        rx.cond(ShootsState.error != "", error_callout(ShootsState.error, id="shoots-error")),
        rx.cond(
            ~ShootsState.loaded,
            loading("Loading your shoots…"),
            rx.cond(
                ShootsState.cards.length() > 0,
                rx.grid(
                    rx.foreach(ShootsState.cards, _card),
                    columns=rx.breakpoints(initial="1", sm="2", md="3"),
                    spacing="4",
                    width="100%",
                    id="shoot-list",
                ),
                empty_state(
                    "camera",
                    "No shoots yet",
                    "A shoot holds one listing's photos. Name it above (the address helps you find it later), "
                    "then upload the photos.",
                    id="shoots-empty",
                ),
            ),
        ),
    )
