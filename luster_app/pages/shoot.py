"""/shoots/[shoot_id]: upload a listing's photos, enhance them, follow the jobs, compare and download."""

from __future__ import annotations

import asyncio
import dataclasses
import json
import uuid
from typing import Any

import reflex as rx

from luster_app import routes
from luster_app.components import compare, enhance_panel, photo_grid, review, shoot_header, upload_zone
from luster_app.components.shell import error_callout, loading, page_shell
from luster_app.models import JobStatus, User
from luster_app.pages import shoot_view as view
from luster_app.services.errors import NotFound, PaymentRequired, ServiceError
from luster_app.state import AuthState, app_context

POLL_SECONDS = 2
# While work is in flight the page keeps updating, however long the batch takes; after the first
# half hour it asks less often (a queue with no worker running would otherwise be asked every 2 s).
SLOW_POLL_AFTER = 900
SLOW_POLL_SECONDS = 10
UPLOAD_INPUT_ID = "upload-input"


class ShootState(AuthState):
    """One shoot: its photos and their jobs, the upload queue, the selection, the enhance form."""

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
    uploads: list[view.UploadRow] = []
    following_uploads: bool = False
    selected: list[str] = []
    presets: list[view.PresetOption] = []
    preset: str = "enhance"
    values: dict[str, str] = {}
    numbers: dict[str, float] = {}  # the sliders' values, as numbers
    enhance_open: bool = False
    rerun_id: str = ""
    enhancing: bool = False
    # One Idempotency-Key per opening of the Enhance dialog, spent by its success: a confirm
    # dispatched twice (a double tap, an event replayed after a reconnect) queues the jobs once.
    enhance_key: str = ""
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

    @rx.var
    def targets(self) -> list[str]:
        """The photos the enhance dialog is about: one being re-run, or the selection."""
        return [self.rerun_id] if self.rerun_id else self.selected

    @rx.var
    def chosen(self) -> view.PresetOption:
        found = [p for p in self.presets if p.name == self.preset]
        return found[0] if found else view.PresetOption("", "", "", False, False, [])

    @rx.var
    def uploads_active(self) -> bool:
        return any(row.state in ("queued", "uploading", "checking") for row in self.uploads)

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
        self._load_credits(user)
        if str(shoot_id) != self.shoot_id:
            self.loaded, self.photos, self.progress, self.moved = False, [], {}, {}
            self.selected, self.uploads = [], []
        self.missing, self.error, self.notice, self.payment_needed = False, "", "", ""
        self.following_uploads = False  # a reload ended whatever the browser was uploading
        yield
        context = app_context()
        try:
            if shoot_id is None:
                raise NotFound("shoot not found")
            self.info = await asyncio.to_thread(view.shoot_info, context, user.id, shoot_id)
            self.shoot_id = str(shoot_id)
            cards = await asyncio.to_thread(view.photo_cards, context, user.id, shoot_id)
            self.photos, self.progress, self.moved = cards.photos, cards.progress, {}
            self.presets = await asyncio.to_thread(view.presets, context)
        except NotFound:
            self.missing = True
        except ServiceError as exc:
            self.error = str(exc)
        self.loaded = True
        if not self.values:
            self._reset_values()
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

    # --- uploads (the bytes go from the browser to storage through assets/direct_upload.js) ---

    @rx.event
    def files_chosen(self, _value: str = ""):
        """Files were picked or dropped: hand them to the browser's upload queue, with a fresh token."""
        if self._signed_in_user() is None:
            return self._sign_in_first()
        config = {"inputId": UPLOAD_INPUT_ID, "shoot": self.shoot_id, "bearer": self._browser_token()}
        return rx.call_script(f"lusterUploads.start({json.dumps(config)})", callback=ShootState.uploads_changed)

    @rx.event
    def insist(self, key: str):
        """Upload a file that is already in the shoot anyway."""
        if self._signed_in_user() is None:
            return self._sign_in_first()
        config = {"key": key, "bearer": self._browser_token()}
        return rx.call_script(f"lusterUploads.insist({json.dumps(config)})", callback=ShootState.uploads_changed)

    @rx.event
    def clear_uploads(self):
        return rx.call_script("lusterUploads.clear()", callback=ShootState.uploads_changed)

    async def _track_uploads(self, snapshot: list[dict[str, Any]] | None):
        rows = view.upload_rows(snapshot or [])
        newly_done = sum(r.state == "done" for r in rows) > sum(r.state == "done" for r in self.uploads)
        self.uploads = rows
        if newly_done:
            user = self._signed_in_user()
            if user is None:
                return self._sign_in_first()
            await self._refresh(user)
        if self.uploads_active and not self.following_uploads:
            # One follower at a time: it asks the browser again each time the queue moves.
            self.following_uploads = True
            fresh = json.dumps({"bearer": self._browser_token()})
            return rx.call_script(f"lusterUploads.changed({fresh})", callback=ShootState.uploads_followed)
        return None

    @rx.event
    async def uploads_changed(self, snapshot: list[dict[str, Any]]):
        """The browser's queue moved: show it, add finished photos to the grid, and keep following."""
        return await self._track_uploads(snapshot)

    @rx.event
    async def uploads_followed(self, snapshot: list[dict[str, Any]]):
        self.following_uploads = False
        return await self._track_uploads(snapshot)

    # --- selection and enhancing ---

    @rx.event
    def toggle_selected(self, asset_id: str):
        self.selected = [a for a in self.selected if a != asset_id] if asset_id in self.selected else [*self.selected, asset_id]

    @rx.event
    def select_all(self):
        self.selected = self._ready_ids({**self.progress, **self.moved})

    @rx.event
    def clear_selection(self):
        self.selected = []

    def _reset_values(self) -> None:
        fields = self.chosen.fields
        self.values = {field.name: field.default for field in fields}
        if "auto_privacy" in self.values:  # the shoot's setting is the panel's starting point
            self.values["auto_privacy"] = "true" if self.info.auto_privacy else "false"
        self.numbers = {field.name: float(field.default) for field in fields if field.kind == "slider"}

    @rx.event
    def choose_preset(self, name: str):
        self.preset = name
        self._reset_values()

    @rx.event
    def set_value(self, name: str, value: Any):
        if isinstance(value, list):  # a slider reports a list of thumbs
            value = float(value[0]) if value else 0.0
            self.numbers = {**self.numbers, name: value}
            value = round(value, 2)
        if isinstance(value, bool):
            value = "true" if value else "false"
        self.values = {**self.values, name: str(value)}

    @rx.event
    def open_enhance(self):
        self.rerun_id, self.enhance_open, self.payment_needed, self.error = "", True, "", ""
        self.enhance_key = uuid.uuid4().hex

    @rx.event
    def open_rerun(self, asset_id: str):
        self.rerun_id, self.enhance_open, self.payment_needed, self.error = asset_id, True, "", ""
        self.enhance_key = uuid.uuid4().hex

    @rx.event
    def set_enhance_open(self, is_open: bool):
        self.enhance_open = is_open

    @rx.event
    async def confirm_enhance(self):
        """Queue the jobs (one credit each, charged on success); a 402 says how to get credits."""
        user = self._signed_in_user()
        if user is None:
            yield self._sign_in_first()
            return
        if not self.enhance_key:  # this dialog's jobs are already queued: a repeated dispatch
            return
        targets, preset, key = list(self.targets), self.preset, self.enhance_key
        params = view.param_values(self.chosen.fields, self.values)
        self.enhancing = True
        yield
        try:
            groups = {p.id: p.bracket_id for p in self.photos if p.is_group}
            count = await asyncio.to_thread(view.enhance, app_context(), user.id, targets, preset, params, key, groups)
        except PaymentRequired as exc:
            self.payment_needed = str(exc)
            return
        except ServiceError as exc:
            self.error = str(exc)
            return
        finally:
            self.enhancing, self.enhance_open = False, False
        self.enhance_key = ""
        self.notice = f"{count} photo{'s' if count != 1 else ''} queued for {self.chosen.title}."
        self.selected, self.rerun_id = [], ""
        await self._refresh(user)
        yield ShootState.watch_jobs

    # --- options (compare: shoot_compare.py; downloads and sharing: shoot_delivery.py) ---

    @rx.event
    async def set_disclose(self, disclose: bool):
        """The AB 723 option: caption scene-altering photos "Digitally altered" when downloaded."""
        user = self._signed_in_user()
        if user is None:
            return self._sign_in_first()
        await asyncio.to_thread(view.set_disclose, app_context(), user.id, uuid.UUID(self.shoot_id), disclose)
        self.info = dataclasses.replace(self.info, disclose=disclose)
        return None

    @rx.event
    async def set_auto_privacy(self, on: bool):
        """The shoot's Auto privacy: its new jobs blur faces and plates unless the enhance panel says otherwise."""
        user = self._signed_in_user()
        if user is None:
            return self._sign_in_first()
        await asyncio.to_thread(view.set_auto_privacy, app_context(), user.id, uuid.UUID(self.shoot_id), on)
        self.info = dataclasses.replace(self.info, auto_privacy=on)
        self._reset_values()
        return None


def shoot_page() -> rx.Component:
    """The shoot: header, uploads, enhance controls, the photo grid, and the compare dialog."""
    # Imported here: the substate module imports ShootState from this one.
    from luster_app.components import bracket_controls as bracket_ui
    from luster_app.components import own_controls as own_ui
    from luster_app.pages.shoot_brackets import ShootBracketState as Brackets
    from luster_app.pages.shoot_compare import ShootCompareState as Compare
    from luster_app.pages.shoot_delivery import ShootDeliveryState as Delivery
    from luster_app.pages.shoot_own import ShootOwnState as Own

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
                    shoot_header.shoot_header(ShootState, Delivery),
                    own_ui.shoot_actions(Own),
                    shoot_header.messages(ShootState),
                    upload_zone.upload_zone(ShootState, UPLOAD_INPUT_ID, retry=Own.retry_upload),
                    own_ui.refused_uploads(Own),
                    bracket_ui.suggestions(Brackets),
                    rx.flex(enhance_panel.enhance_bar(ShootState), bracket_ui.group_button(Brackets),
                            own_ui.cancel_queued_button(Own), gap="3", align="center", wrap="wrap", width="100%"),
                    photo_grid.photo_grid(ShootState, delete_button=lambda photo: bracket_ui.card_controls(
                        Brackets, photo, own_ui.delete_photo_button(Own, photo)),
                        download=Delivery.download_sized, compare=Compare.open_compare),
                    enhance_panel.enhance_dialog(ShootState),
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
