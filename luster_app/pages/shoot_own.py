"""The shoot page's "own your work" actions: rename, delete a photo, cancel the queued batch,
retry a failed upload, and the uploads that never arrived (with their reason, until dismissed).

A substate of ShootState (its photos, shoot id and session are inherited), kept out of shoot.py.
"""

from __future__ import annotations

import asyncio
import dataclasses
import uuid
from datetime import timedelta

import reflex as rx
from sqlalchemy import select

from luster_app.context import AppContext
from luster_app.models import Asset, AssetKind, AssetStatus, JobStatus, utcnow
from luster_app.pages import shoot_view as view
from luster_app.pages.shoot import ShootState
from luster_app.services import admin as admin_service
from luster_app.services import deletion, shoots
from luster_app.services.errors import Conflict, NotFound, ServiceError
from luster_app.state import app_context

UNFINISHED = "The upload did not finish (the page was closed or the connection dropped). Upload the photo again."


@dataclasses.dataclass
class RefusedUpload:
    """A photo that never became part of the shoot, and why."""

    id: str
    filename: str
    reason: str


# --- calls to the core (plain functions, run in a thread) ---

def rename_shoot(context: AppContext, user_id: uuid.UUID, shoot_id: uuid.UUID, name: str, address: str) -> view.ShootInfo:
    with context.session() as session:
        shoot = shoots.update_shoot(session=session, user_id=user_id, shoot_id=shoot_id, name=name, address=address,
                                    change_address=True)
        return view.ShootInfo(name=shoot.name, address=shoot.address or "", disclose=shoot.disclose_alterations)


def delete_photo(context: AppContext, user_id: uuid.UUID, asset_id: uuid.UUID) -> deletion.Removed:
    with context.session() as session:
        return deletion.delete_asset(session=session, storage=context.storage, settings=context.settings, user_id=user_id,
                                     asset_id=asset_id)


def delete_shoot(context: AppContext, user_id: uuid.UUID, shoot_id: uuid.UUID) -> None:
    with context.session() as session:
        deletion.delete_shoot(session=session, storage=context.storage, settings=context.settings, user_id=user_id,
                              shoot_id=shoot_id)


def cancel_jobs(context: AppContext, user_id: uuid.UUID, job_ids: list[uuid.UUID]) -> tuple[int, int]:
    """Cancel each queued job; (canceled, already started or finished)."""
    canceled = 0
    with context.session() as session:
        for job_id in job_ids:
            try:
                admin_service.cancel_job(session=session, owner_id=user_id, job_id=job_id)
                canceled += 1
            except (Conflict, NotFound):
                pass  # a worker took it meanwhile: it runs, and is charged only if it succeeds
    return canceled, len(job_ids) - canceled


def refused_uploads(context: AppContext, user_id: uuid.UUID, shoot_id: uuid.UUID) -> list[RefusedUpload]:
    """Rejected uploads, and uploads whose signed URL expired before they finished."""
    expired = utcnow() - timedelta(seconds=context.settings.signed_url_ttl_seconds)
    with context.session() as session:
        shoots.get_shoot(session=session, user_id=user_id, shoot_id=shoot_id)
        assets = session.execute(
            select(Asset)
            .where(Asset.shoot_id == shoot_id, Asset.user_id == user_id, Asset.kind == AssetKind.ORIGINAL)
            .where((Asset.status == AssetStatus.REJECTED) | ((Asset.status == AssetStatus.PENDING) & (Asset.created_at < expired)))
            .order_by(Asset.created_at)
        ).scalars().all()
        return [
            RefusedUpload(id=str(a.id), filename=a.filename, reason=a.reject_reason or UNFINISHED) for a in assets
        ]


class ShootOwnState(ShootState):
    """Rename, delete, cancel and retry on the shoot page."""

    rename_open: bool = False
    new_name: str = ""
    new_address: str = ""
    delete_id: str = ""  # the photo the delete dialog asks about
    delete_name: str = ""
    delete_shoot_open: bool = False
    refused: list[RefusedUpload] = []

    @rx.var
    def queued_count(self) -> int:
        return len(self._queued_jobs())

    def _queued_jobs(self) -> list[str]:
        """The jobs "Cancel queued" would cancel: every photo's job still waiting for a worker."""
        return [job.job_id for job in {**self.progress, **self.moved}.values() if job.job_status == JobStatus.QUEUED]

    @rx.event
    async def load_refused(self):
        """on_load after ShootState.load: the uploads of this shoot that never arrived."""
        user, shoot_id = self._user_and_shoot()
        if user is None or shoot_id is None:
            return
        try:
            self.refused = await asyncio.to_thread(refused_uploads, app_context(), user.id, shoot_id)
        except NotFound:
            self.refused = []

    # --- rename and delete the shoot ---

    @rx.event
    def open_rename(self):
        self.new_name, self.new_address, self.rename_open = self.info.name, self.info.address, True

    @rx.event
    def set_rename_open(self, is_open: bool):
        self.rename_open = is_open

    @rx.event
    def set_new_name(self, value: str):
        self.new_name = value

    @rx.event
    def set_new_address(self, value: str):
        self.new_address = value

    @rx.event
    async def save_rename(self):
        user = self._signed_in_user()
        if user is None:
            return self._sign_in_first()
        try:
            self.info = await asyncio.to_thread(
                rename_shoot, app_context(), user.id, uuid.UUID(self.shoot_id), self.new_name, self.new_address
            )
        except ServiceError as exc:
            self.error = str(exc)
        self.rename_open = False
        return None

    @rx.event
    def set_delete_shoot_open(self, is_open: bool):
        self.delete_shoot_open = is_open

    @rx.event
    async def confirm_delete_shoot(self):
        user = self._signed_in_user()
        if user is None:
            return self._sign_in_first()
        self.delete_shoot_open = False
        try:
            await asyncio.to_thread(delete_shoot, app_context(), user.id, uuid.UUID(self.shoot_id))
        except ServiceError as exc:
            self.error = str(exc)
            return None
        return rx.redirect("/shoots")

    # --- delete a photo, cancel the queued batch ---

    @rx.event
    def ask_delete(self, asset_id: str, filename: str):
        self.delete_id, self.delete_name = asset_id, filename

    @rx.event
    def set_delete_open(self, is_open: bool):
        if not is_open:
            self.delete_id, self.delete_name = "", ""

    @rx.event
    async def confirm_delete(self):
        """Delete the photo asked about, with everything made from it."""
        asset_id, name = self.delete_id, self.delete_name
        self.delete_id, self.delete_name = "", ""
        return await self._delete(asset_id, f"{name} deleted.")

    @rx.event
    async def dismiss_refused(self, asset_id: str):
        """Forget an upload that never arrived (its row, and whatever part of it reached storage)."""
        return await self._delete(asset_id, "")

    async def _delete(self, asset_id: str, notice: str):
        user = self._signed_in_user()
        if user is None:
            return self._sign_in_first()
        self.error = ""
        try:
            await asyncio.to_thread(delete_photo, app_context(), user.id, uuid.UUID(asset_id))
        except NotFound:
            pass  # already gone (another tab): the refresh below shows it
        except ServiceError as exc:
            self.error = str(exc)
            return None
        self.selected = [a for a in self.selected if a != asset_id]
        self.notice = notice
        self.refused = [r for r in self.refused if r.id != asset_id]
        await self._refresh(user)
        return None

    @rx.event
    async def cancel_queued(self):
        """Cancel every queued job of the shoot; their credits are free at once."""
        user = self._signed_in_user()
        if user is None:
            return self._sign_in_first()
        job_ids = [uuid.UUID(job_id) for job_id in self._queued_jobs()]
        canceled, started = await asyncio.to_thread(cancel_jobs, app_context(), user.id, job_ids)
        note = f" {started} had already started and will finish." if started else ""
        self.notice = f"{canceled} queued photo{'s' if canceled != 1 else ''} canceled; no credit was charged.{note}"
        await self._refresh(user)
        return None
