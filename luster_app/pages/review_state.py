"""Honest edits on the shoot page: "What changed" in compare, and the review of a held edit.

Its own state (a sibling of the shoot page's), so the shoot page's upload and job code stays
as it is: it reads the shoot's photos and refreshes them through `get_state`.
"""

from __future__ import annotations

import asyncio
import dataclasses
import uuid
from typing import Any

import reflex as rx

from luster_app.context import AppContext
from luster_app.services import review
from luster_app.services.errors import ServiceError
from luster_app.services.jobs import get_job_for_user
from luster_app.state import AuthState, app_context


@dataclasses.dataclass
class AreaBox:
    """A redrawn area as CSS percentages of the photo, and whether its preset allows it there."""

    left: str
    top: str
    width: str
    height: str
    allowed: bool


@dataclasses.dataclass
class Changes:
    job_id: str
    status: str
    summary: str
    output_url: str
    areas: list[AreaBox]


def area_boxes(alteration: dict[str, Any] | None) -> list[AreaBox]:
    """The job's redrawn areas (boxes as 0..1 fractions) as CSS boxes over the photo."""
    boxes = []
    for area in (alteration or {}).get("areas", []):
        left, top, right, bottom = area["box"]
        boxes.append(AreaBox(left=f"{100 * left:.2f}%", top=f"{100 * top:.2f}%", width=f"{100 * (right - left):.2f}%",
                             height=f"{100 * (bottom - top):.2f}%", allowed=bool(area["allowed"])))
    return boxes


def job_changes(context: AppContext, user_id: uuid.UUID, job_id: uuid.UUID) -> Changes:
    """What the user's job redrew, with a URL of its newest output (held or delivered)."""
    with context.session() as session:
        found = get_job_for_user(session=session, user_id=user_id, job_id=job_id)
    job = found.job
    ttl = context.settings.signed_url_ttl_seconds
    shown = [item.viewable for item in found.outputs]
    url = context.storage.signed_get_url(shown[-1].storage_key, expires_in=ttl) if shown else ""
    summary = (job.alteration or {}).get("summary") or "Not measured (made before honest edits)."
    return Changes(job_id=str(job.id), status=job.status, summary=summary, output_url=url,
                   areas=area_boxes(job.alteration))


def decide(context: AppContext, user_id: uuid.UUID, job_id: uuid.UUID, *, accept: bool) -> None:
    with context.session() as session:
        (review.accept_job if accept else review.reject_job)(session=session, user_id=user_id, job_id=job_id)


class ReviewState(AuthState):
    """The "What changed" overlay of the compare dialog, and the review dialog of a held edit."""

    changes_for: str = ""  # the output (id) the overlay was loaded for
    show_changes: bool = False
    changes_summary: str = ""
    areas: list[AreaBox] = []
    review_open: bool = False
    review_job_id: str = ""
    review_url: str = ""
    review_summary: str = ""
    review_areas: list[AreaBox] = []
    review_error: str = ""
    deciding: bool = False

    async def _shoot(self) -> Any:
        from luster_app.pages.shoot import ShootState  # the shoot page imports this module's components

        return await self.get_state(ShootState)

    @rx.event
    async def toggle_changes(self):
        """Outline what the AI redrew on the version now in the compare dialog (or hide it)."""
        from luster_app.pages.shoot_compare import ShootCompareState

        user = self._signed_in_user()
        compare = await self.get_state(ShootCompareState)
        if user is None or (self.show_changes and self.changes_for == compare.compare_output_id):
            self.show_changes = False
            return
        job_id = next((o.job_id for o in compare.compare_versions if o.id == compare.compare_output_id), "")
        if not job_id:
            return
        try:
            changes = await asyncio.to_thread(job_changes, app_context(), user.id, uuid.UUID(job_id))
        except ServiceError as exc:
            self.changes_summary, self.areas = str(exc), []
        else:
            self.changes_summary, self.areas = changes.summary, changes.areas
        self.changes_for, self.show_changes = compare.compare_output_id, True

    @rx.event
    async def open_review(self, job_id: str):
        """The held edit with what it redrew outlined, and Accept / Reject."""
        user = self._signed_in_user()
        if user is None:
            return
        self.review_error, self.review_url, self.review_open = "", "", True
        try:
            changes = await asyncio.to_thread(job_changes, app_context(), user.id, uuid.UUID(job_id))
        except ServiceError as exc:
            self.review_error = str(exc)
            return
        self.review_job_id, self.review_url = changes.job_id, changes.output_url
        self.review_summary, self.review_areas = changes.summary, changes.areas

    @rx.event
    def set_review_open(self, is_open: bool):
        self.review_open = is_open

    async def _decide(self, accept: bool):
        user = self._signed_in_user()
        if user is None or self.deciding:
            return
        self.deciding = True
        yield
        try:
            await asyncio.to_thread(decide, app_context(), user.id, uuid.UUID(self.review_job_id), accept=accept)
        except ServiceError as exc:
            self.review_error = str(exc)
        else:
            self.review_open = False
            shoot = await self._shoot()
            await shoot._refresh(user)
            shoot.notice = "Edit accepted: 1 credit used." if accept else "Edit rejected: nothing was charged."
        finally:
            self.deciding = False

    @rx.event
    async def accept(self):
        """Keep the edit: delivered, and one credit charged."""
        async for update in self._decide(True):
            yield update

    @rx.event
    async def reject(self):
        """Discard the edit: nothing charged; the photo can be enhanced again."""
        async for update in self._decide(False):
            yield update

