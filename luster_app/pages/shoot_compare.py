"""The shoot page's compare: one photo's original and any of its enhanced versions, split by a slider.

A substate of ShootState (its photos and session are inherited), kept out of shoot.py. The two
images are signed for the dialog itself, not borrowed from the photo cards, and signed again
before they expire while the dialog stays open, so a compare left open for an hour still loads.
"""

from __future__ import annotations

import asyncio
import time
import uuid

import reflex as rx

from luster_app.context import AppContext
from luster_app.pages import shoot_view as view
from luster_app.pages.shoot import ShootState
from luster_app.services import gallery, shoots
from luster_app.services.errors import ServiceError
from luster_app.state import app_context

# Sign again once this share of the signed URLs' lifetime has passed.
RESIGN_AT = 0.8


def compare_urls(context: AppContext, user_id: uuid.UUID, asset_id: uuid.UUID) -> tuple[str, dict[str, str]]:
    """Freshly signed URLs of the photo as a browser shows it, and of each delivered version (by id)."""
    with context.session() as session:
        photo = shoots.get_asset_with_urls(session=session, storage=context.storage, settings=context.settings,
                                           user_id=user_id, asset_id=asset_id)
        before = gallery.display_url(session=session, storage=context.storage, settings=context.settings,
                                     limits=context.upload_checks, user_id=user_id, asset_id=asset_id)
    return before, {str(output.id): output.url for output in photo.outputs}


def seconds_until_resign(signed_at: float, now: float, ttl_seconds: int) -> float:
    """How long the dialog's URLs can still be used before they are signed again (0: now)."""
    return max(0.0, signed_at + RESIGN_AT * ttl_seconds - now)


class ShootCompareState(ShootState):
    """The compare dialog: which photo, which version, and its freshly signed URLs."""

    compare_open: bool = False
    compare_name: str = ""
    compare_asset_id: str = ""
    compare_output_id: str = ""
    compare_versions: list[view.OutputCard] = []
    compare_before: str = ""
    compare_after: str = ""
    _after_urls: dict[str, str] = {}
    _signed_at: float = 0.0
    _generation: int = 0  # each opening; a keep-fresh loop of an earlier one stops

    @rx.var
    def compare_job_id(self) -> str:
        return next((o.job_id for o in self.compare_versions if o.id == self.compare_output_id), "")

    async def _sign(self) -> None:
        user = self._signed_in_user()
        if user is None:
            return
        before, after = await asyncio.to_thread(compare_urls, app_context(), user.id, uuid.UUID(self.compare_asset_id))
        self.compare_before, self._after_urls, self._signed_at = before, after, time.time()
        if self.compare_output_id not in after and self.compare_versions:
            self.compare_output_id = self.compare_versions[-1].id
        self.compare_after = after.get(self.compare_output_id, "")

    @rx.event
    async def open_compare(self, asset_id: str):
        """Before and after of the photo: its original and its newest version, split down the middle."""
        if self._signed_in_user() is None:
            yield self._sign_in_first()
            return
        photo = next((p for p in self.photos if p.id == asset_id), None)
        job = self._job_of(asset_id)
        if photo is None or not job.outputs:
            return
        self.compare_asset_id, self.compare_name = asset_id, photo.filename
        self.compare_versions, self.compare_output_id = job.outputs, job.latest_output_id
        self.compare_before, self.compare_after, self.compare_open = "", "", True
        self._generation += 1
        yield
        try:
            await self._sign()
        except ServiceError as exc:
            self.compare_open, self.error = False, str(exc)
            return
        yield ShootCompareState.keep_fresh(self._generation)

    @rx.event
    def pick_version(self, output_id: str):
        """Compare the original with another enhanced version of the photo."""
        if output_id in self._after_urls:
            self.compare_output_id, self.compare_after = output_id, self._after_urls[output_id]

    @rx.event
    def set_compare_open(self, is_open: bool):
        self.compare_open = is_open
        if not is_open:
            self._generation += 1

    @rx.event(background=True)
    async def keep_fresh(self, generation: int):
        """While this opening of the dialog lasts, sign its URLs again before they expire."""
        ttl = app_context().settings.signed_url_ttl_seconds
        while True:
            async with self:
                if not self.compare_open or generation != self._generation:
                    return
                wait = seconds_until_resign(self._signed_at, time.time(), ttl)
            await asyncio.sleep(max(1.0, wait))
            async with self:
                if not self.compare_open or generation != self._generation:
                    return
                try:
                    await self._sign()
                except ServiceError:
                    return  # the photo was deleted meanwhile: nothing left to keep fresh
