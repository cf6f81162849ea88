"""The shoot page's bracket groups: group the selected photos, accept a suggested group, ungroup.

A substate of ShootState (its photos, selection and shoot id are inherited), kept out of shoot.py.
A group shows in the grid as one card (its merged photo), enhanced like any photo.
"""

from __future__ import annotations

import asyncio
import uuid

import reflex as rx

from luster_app.imaging.brackets import MAX_FRAMES, MIN_FRAMES
from luster_app.pages import shoot_view as view
from luster_app.pages.shoot import ShootState
from luster_app.services.errors import NotFound, ServiceError
from luster_app.state import app_context


class ShootBracketState(ShootState):
    """Bracket groups on the shoot page."""

    suggestions: list[view.Suggestion] = []

    @rx.var
    def can_group(self) -> bool:
        """The selection can become a group: 2 to 9 single photos."""
        singles = {p.id for p in self.photos if not p.bracket_id}
        return MIN_FRAMES <= len(self.selected) <= MAX_FRAMES and all(a in singles for a in self.selected)

    async def _reload(self) -> None:
        user, shoot_id = self._user_and_shoot()
        if user is None or shoot_id is None:
            return
        await self._refresh(user)
        self.suggestions = await asyncio.to_thread(view.suggestions, app_context(), user.id, shoot_id, self.photos)

    @rx.event
    async def load_suggestions(self):
        """on_load after ShootState.load: the groups the photos' EXIF suggests."""
        user, shoot_id = self._user_and_shoot()
        if user is None or shoot_id is None:
            return
        try:
            self.suggestions = await asyncio.to_thread(view.suggestions, app_context(), user.id, shoot_id, self.photos)
        except NotFound:
            self.suggestions = []

    async def _group(self, asset_ids: list[str]):
        user = self._signed_in_user()
        if user is None:
            return self._sign_in_first()
        self.error, self.notice = "", ""
        try:
            await asyncio.to_thread(view.group_photos, app_context(), user.id, uuid.UUID(self.shoot_id), asset_ids)
        except ServiceError as exc:
            self.error = str(exc)
            return None
        self.selected = []
        self.notice = f"{len(asset_ids)} photos grouped as one bracket: enhancing it merges them into one photo (one credit)."
        await self._reload()
        return None

    @rx.event
    async def group_selected(self):
        """Group the selected photos as one bracket."""
        return await self._group(list(self.selected))

    @rx.event
    async def accept_suggestion(self, asset_ids: list[str]):
        return await self._group(asset_ids)

    @rx.event
    async def ungroup(self, bracket_id: str):
        """The group's photos are single again."""
        user = self._signed_in_user()
        if user is None:
            return self._sign_in_first()
        self.error, self.notice = "", ""
        try:
            await asyncio.to_thread(view.ungroup, app_context(), user.id, bracket_id)
        except ServiceError as exc:
            self.error = str(exc)
            return None
        self.selected = [a for a in self.selected if any(p.id == a and not p.is_group for p in self.photos)]
        self.notice = "Bracket ungrouped."
        await self._reload()
        return None
