"""The shoot page's delivery: single downloads and the ZIP with their choices (latest or every
version, size, the selected photos only), and the public disclosure page (AB 723).

A substate of ShootState (its shoot id, photos, selection and session are inherited), kept out of shoot.py.
"""

from __future__ import annotations

import asyncio
import uuid
from urllib.parse import urlencode

import reflex as rx

from luster_app.context import AppContext
from luster_app.pages import shoot_view as view
from luster_app.pages.shoot import ShootState
from luster_app.services import sharing
from luster_app.services.downloads import SIZES
from luster_app.services.errors import ServiceError
from luster_app.state import app_context


# --- calls to the core (plain functions, run in a thread) ---

def share_url(context: AppContext, user_id: uuid.UUID, shoot_id: uuid.UUID, *, make: bool | None) -> str:
    """The shoot's public link ("" while not shared); `make` True shares it, False stops sharing."""
    with context.session() as session:
        if make is True:
            share: sharing.Share | None = sharing.share_shoot(session=session, user_id=user_id, shoot_id=shoot_id)
        elif make is False:
            sharing.revoke_share(session=session, user_id=user_id, shoot_id=shoot_id)
            share = None
        else:
            share = sharing.get_share(session=session, user_id=user_id, shoot_id=shoot_id)
    return context.settings.app_url + share.path if share else ""


class ShootDeliveryState(ShootState):
    """Export choices and the disclosure page of the shoot."""

    zip_versions: str = "latest"
    zip_size: str = "full"
    zip_selected_only: bool = False
    public_url: str = ""

    @rx.event
    def set_zip_versions(self, value: str):
        self.zip_versions = value if value in ("latest", "all") else "latest"

    @rx.event
    def set_zip_size(self, value: str):
        self.zip_size = value if value in SIZES else "full"

    @rx.event
    def set_zip_selected_only(self, value: bool):
        self.zip_selected_only = bool(value)

    async def _link(self, **target: uuid.UUID) -> tuple[str, str] | None:
        user = self._signed_in_user()
        if user is None:
            return None
        try:
            link = await asyncio.to_thread(view.download_link, app_context(), user.id, **target)
        except ServiceError as exc:
            self.error = str(exc)
            return None
        return link.path, link.filename

    @rx.event
    async def download_zip(self):
        """The shoot's ZIP with the chosen versions, size and photos."""
        link = await self._link(shoot_id=uuid.UUID(self.shoot_id))
        if link is None:
            return self._sign_in_first() if self._signed_in_user() is None else None
        choices = {"versions": self.zip_versions, "size": self.zip_size}
        if self.zip_selected_only and self.selected:
            choices["assets"] = ",".join(self.selected)
        return rx.download(url=f"{link[0]}&{urlencode(choices)}", filename=link[1])

    @rx.event
    async def download_sized(self, output_id: str):
        """One enhanced photo at the chosen size (captioned if the shoot asks for it)."""
        link = await self._link(asset_id=uuid.UUID(output_id))
        if link is None:
            return self._sign_in_first() if self._signed_in_user() is None else None
        return rx.download(url=f"{link[0]}&{urlencode({'size': self.zip_size})}", filename=link[1])

    async def _share(self, make: bool | None) -> None:
        user = self._signed_in_user()
        if user is None or not self.shoot_id:
            return
        try:
            self.public_url = await asyncio.to_thread(share_url, app_context(), user.id, uuid.UUID(self.shoot_id),
                                                      make=make)
        except ServiceError as exc:
            self.error = str(exc)

    @rx.event
    async def load_share(self):
        """Whether the shoot's disclosure page is shared (after the page's own load)."""
        await self._share(None)

    @rx.event
    async def share(self):
        """Publish the disclosure page: anyone with its link sees the delivered photos and their originals."""
        await self._share(True)
        if self.public_url:
            self.notice = "The disclosure page is public: copy its link into the listing."

    @rx.event
    async def stop_sharing(self):
        """End the disclosure page: its link answers "not found" from now on."""
        await self._share(False)
        if not self.public_url:
            self.notice = "The disclosure page is no longer public; its old link does not open anymore."
