"""/shoots/[shoot_id]: upload a listing's photos, enhance them, follow the jobs, compare and download."""

from __future__ import annotations

import asyncio
import uuid

import reflex as rx

from luster_app import routes
from luster_app.components import compare, enhance_panel, photo_grid, review, shoot_header, upload_zone
from luster_app.components.shell import error_callout, loading, page_shell
from luster_app.models import JobStatus, User
from luster_app.pages import shoot_view as view
from luster_app.services.errors import NotFound, ServiceError
from luster_app.state import AuthState, app_context

POLL_SECONDS = 2
# While work is in flight the page keeps updating, however long the batch takes; after the first
# half hour it asks less often (a queue with no worker running would otherwise be asked every 2 s).
SLOW_POLL_AFTER = 900
SLOW_POLL_SECONDS = 10


class ShootState(AuthState):
    """One shoot: its photos and their jobs, followed live, and the selection. The page's other
    concerns are substates beside this module: the upload queue (shoot_uploads.py), the Enhance
    dialog (shoot_enhance.py), the shoot's options (shoot_settings.py), compare, delivery, bracket
    groups and the "own your work" actions."""

    shoot_id: str = ""
    info: view.ShootInfo = view.ShootInfo(name="", address="", disclose=True)
    photos: list[view.PhotoCard] = []
    # Each card's job, as last sent whole; `moved`: the cards whose job moved since, all a poll tick sends.
    progress: dict[str, view.CardProgress] = {}
    moved: dict[str, view.CardProgress] = {}
    _job_marks: dict[str, str] = {}  # each card's job and status at the last poll
    loaded: bool = False
    missing: bool = False
    error: str = ""
    notice: str = ""
    payment_needed: str = ""
    selected: list[str] = []
    _watching: bool = False
    batch_done: int = 0
    batch_total: int = 0
    batch_summary: str = ""  # "3 of 10 done · about 4 min left"

    # --- derived view data ---

    @rx.var
    def in_flight(self) -> int:
        return sum(1 for job in {**self.progress, **self.moved}.values() if job.job_status in JobStatus.ACTIVE)

    @rx.var
    def ready_count(self) -> int:
        return len(self._ready_ids({**self.progress, **self.moved}))

    def _ready_ids(self, jobs: dict[str, view.CardProgress]) -> list[str]:
        """What "Select all" takes: photos that can be enhanced now (uploaded, no job in progress)."""
        return [
            p.id for p in self.photos
            # A bracket's frames are enhanced as their group, not one by one.
            if p.upload_status == "ready" and jobs[p.id].job_status not in JobStatus.ACTIVE and (p.is_group or not p.bracket_id)
        ]

    @rx.var
    def has_outputs(self) -> bool:
        return any(job.outputs for job in {**self.progress, **self.moved}.values())

    # --- loading and refreshing ---

    def _user_and_shoot(self) -> tuple[User | None, uuid.UUID | None]:
        user = self._signed_in_user()
        try:
            return user, uuid.UUID(self.router.url.path.rstrip("/").rsplit("/", 1)[-1])
        except ValueError:
            return user, None

    @rx.event
    async def load(self):
        """Open the shoot: its details, photos and the presets on offer."""
        user, shoot_id = self._user_and_shoot()
        if user is None:
            yield self._sign_in_first()
            return
        # Imported here: the substate modules import ShootState from this one.
        from luster_app.pages.shoot_enhance import ShootEnhanceState
        from luster_app.pages.shoot_uploads import ShootUploadState

        enhance, uploads = await self.get_state(ShootEnhanceState), await self.get_state(ShootUploadState)
        self._load_credits(user)
        if str(shoot_id) != self.shoot_id:
            self.loaded, self.photos, self.progress, self.moved = False, [], {}, {}
            self.selected, uploads.uploads = [], []
        self.missing, self.error, self.notice, self.payment_needed = False, "", "", ""
        uploads.following_uploads = False  # a reload ended whatever the browser was uploading
        yield
        context = app_context()
        try:
            if shoot_id is None:
                raise NotFound("shoot not found")
            self.info = await asyncio.to_thread(view.shoot_info, context, user.id, shoot_id)
            self.shoot_id = str(shoot_id)
            cards = await asyncio.to_thread(view.photo_cards, context, user.id, shoot_id)
            self.photos, self.progress, self.moved = cards.photos, cards.progress, {}
            enhance.presets = await asyncio.to_thread(view.presets, context)
        except NotFound:
            self.missing = True
        except ServiceError as exc:
            self.error = str(exc)
        self.loaded = True
        if not enhance.values:
            enhance._reset_values()
        if self.in_flight:
            yield ShootState.watch_jobs

    def _job_of(self, card_id: str) -> view.CardProgress:
        return self.moved.get(card_id) or self.progress.get(card_id) or view.CardProgress()

    def _show(self, cards: view.ShootCards) -> None:
        """Show `cards`, sending only what changed: the card list when photos came or went (or were
        signed again), the jobs of every card when many moved, else the cards whose job moved."""
        shown = view.ShootCards(photos=self.photos, progress={**self.progress, **self.moved})
        fresh = view.keep_fresh_urls(shown, cards, ttl_seconds=app_context().settings.signed_url_ttl_seconds)
        moved = view.moved_cards(self.progress, fresh.progress)
        if fresh.photos != self.photos:
            self.photos, moved = fresh.photos, None  # and their jobs with them: none of a removed photo lingers
        if moved is None:
            if fresh.progress != self.progress:
                self.progress = fresh.progress
            moved = {}
        if moved != self.moved:
            self.moved = moved

    async def _refresh(self, user: User) -> None:
        cards = await asyncio.to_thread(view.photo_cards, app_context(), user.id, uuid.UUID(self.shoot_id))
        self._show(cards)
        self._load_credits(user)

    @rx.event(background=True)
    async def watch_jobs(self):
        """While any photo's job is queued or processing, refresh the grid every few seconds."""
        async with self:
            if self._watching:
                return
            self._watching = True
            shoot_id = self.shoot_id
        context = app_context()
        try:
            polls = 0
            while True:
                polls += 1
                await asyncio.sleep(POLL_SECONDS if polls < SLOW_POLL_AFTER else SLOW_POLL_SECONDS)
                async with self:
                    user = self._signed_in_user()
                    if user is None or self.shoot_id != shoot_id or self.router.url.path.rstrip("/") != routes.shoot(shoot_id):
                        return
                    seen = self._job_marks
                # The database is read without holding the state, so the page stays responsive meanwhile;
                # the cards (and their signed URLs) only when a job moved.
                marks = await asyncio.to_thread(view.job_marks, context, user.id, uuid.UUID(shoot_id))
                if marks == seen:
                    continue
                cards = await asyncio.to_thread(view.photo_cards, context, user.id, uuid.UUID(shoot_id))
                batch = await asyncio.to_thread(view.batch_progress, context, user.id, uuid.UUID(shoot_id))
                async with self:
                    if self.shoot_id != shoot_id:
                        return
                    self._job_marks = marks
                    self._show(cards)
                    self.batch_done, self.batch_total, self.batch_summary = batch.done, batch.total, batch.summary
                    self._load_credits(user)
                    if not self.in_flight:
                        self.notice = ""  # "queued for …" is over: every badge now says how it went
                        return
        finally:
            async with self:
                self._watching = False

    # --- selection (what the Enhance dialog, bracket groups and the ZIP download act on) ---

    @rx.event
    def toggle_selected(self, asset_id: str):
        self.selected = [a for a in self.selected if a != asset_id] if asset_id in self.selected else [*self.selected, asset_id]

    @rx.event
    def select_all(self):
        self.selected = self._ready_ids({**self.progress, **self.moved})

    @rx.event
    def clear_selection(self):
        self.selected = []


def shoot_page() -> rx.Component:
    """The shoot: header, uploads, enhance controls, the photo grid, and the compare dialog."""
    # Imported here: the substate module imports ShootState from this one.
    from luster_app.components import bracket_controls as bracket_ui
    from luster_app.components import own_controls as own_ui
    from luster_app.pages.shoot_brackets import ShootBracketState as Brackets
    from luster_app.pages.shoot_compare import ShootCompareState as Compare
    from luster_app.pages.shoot_delivery import ShootDeliveryState as Delivery
    from luster_app.pages.shoot_enhance import ShootEnhanceState as Enhance
    from luster_app.pages.shoot_own import ShootOwnState as Own
    from luster_app.pages.shoot_settings import ShootSettingsState as Settings
    from luster_app.pages.shoot_uploads import UPLOAD_INPUT_ID
    from luster_app.pages.shoot_uploads import ShootUploadState as Uploads

    return page_shell(
        rx.cond(
            ShootState.missing,
            rx.vstack(
                error_callout("This shoot does not exist, or it belongs to another account.", id="shoot-missing"),
                rx.link(rx.button("Back to your shoots"), href=routes.SHOOTS),
            ),
            rx.cond(
                ShootState.loaded,
                rx.vstack(
                    shoot_header.shoot_header(ShootState, Delivery, Settings),
                    own_ui.shoot_actions(Own),
                    shoot_header.messages(ShootState),
                    upload_zone.upload_zone(Uploads, UPLOAD_INPUT_ID, retry=Uploads.retry_upload),
                    own_ui.refused_uploads(Own),
                    bracket_ui.suggestions(Brackets),
                    rx.flex(enhance_panel.enhance_bar(ShootState, Enhance), bracket_ui.group_button(Brackets),
                            own_ui.cancel_queued_button(Own), gap="3", align="center", wrap="wrap", width="100%"),
                    photo_grid.photo_grid(ShootState, delete_button=lambda photo: bracket_ui.card_controls(
                        Brackets, photo, own_ui.delete_photo_button(Own, photo)),
                        download=Delivery.download_sized, compare=Compare.open_compare, rerun=Enhance.open_rerun),
                    enhance_panel.enhance_dialog(Enhance),
                    compare.compare_dialog(Compare),
                    own_ui.delete_photo_dialog(Own),
                    review.review_dialog(),
                    spacing="5",
                    width="100%",
                ),
                loading("Opening the shoot…"),
            ),
        ),
    )
