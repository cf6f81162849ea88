"""The shoot page's settings: the AB 723 caption option and Auto privacy.

A substate of ShootState (its shoot id, details and session are inherited), kept out of shoot.py.
"""

from __future__ import annotations

import asyncio
import dataclasses
import uuid

import reflex as rx

from luster_app.pages import shoot_view as view
from luster_app.pages.shoot import ShootState
from luster_app.pages.shoot_enhance import ShootEnhanceState
from luster_app.state import app_context


class ShootSettingsState(ShootState):
    """The shoot's options, saved as they are switched."""

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
        (await self.get_state(ShootEnhanceState))._reset_values()
        return None
