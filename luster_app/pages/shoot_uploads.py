"""The shoot page's upload queue: the bytes go from the browser to storage through
assets/direct_upload.js; this follows the browser's queue and adds finished photos to the grid.

A substate of ShootState (its shoot id, photos and session are inherited), kept out of shoot.py.
"""

from __future__ import annotations

import json
from typing import Any

import reflex as rx

from luster_app.pages import shoot_view as view
from luster_app.pages.shoot import ShootState

UPLOAD_INPUT_ID = "upload-input"


class ShootUploadState(ShootState):
    """The rows of the browser's upload queue, one per file."""

    uploads: list[view.UploadRow] = []
    following_uploads: bool = False

    @rx.var
    def uploads_active(self) -> bool:
        return any(row.state in ("queued", "uploading", "checking") for row in self.uploads)

    def _upload_queue(self, command: str, **config: str):
        """Tell the browser's upload queue to `command` (start, insist, retry), with a fresh token."""
        if self._signed_in_user() is None:
            return self._sign_in_first()
        config["bearer"] = self._browser_token()
        return rx.call_script(f"lusterUploads.{command}({json.dumps(config)})", callback=ShootUploadState.uploads_changed)

    @rx.event
    def files_chosen(self, _value: str = ""):
        """Files were picked or dropped: hand them to the browser's upload queue."""
        return self._upload_queue("start", inputId=UPLOAD_INPUT_ID, shoot=self.shoot_id)

    @rx.event
    def insist(self, key: str):
        """Upload a file that is already in the shoot anyway."""
        return self._upload_queue("insist", key=key)

    @rx.event
    def retry_upload(self, key: str):
        """Send a failed file again, to the shoot it was queued for."""
        return self._upload_queue("retry", key=key)

    @rx.event
    def clear_uploads(self):
        return rx.call_script("lusterUploads.clear()", callback=ShootUploadState.uploads_changed)

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
            return rx.call_script(f"lusterUploads.changed({fresh})", callback=ShootUploadState.uploads_followed)
        return None

    @rx.event
    async def uploads_changed(self, snapshot: list[dict[str, Any]]):
        """The browser's queue moved: show it, add finished photos to the grid, and keep following."""
        return await self._track_uploads(snapshot)

    @rx.event
    async def uploads_followed(self, snapshot: list[dict[str, Any]]):
        self.following_uploads = False
        return await self._track_uploads(snapshot)
