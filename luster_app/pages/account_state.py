"""The account page's state: what the account holds, and closing it after a confirmation."""

from __future__ import annotations

import asyncio
import uuid

import reflex as rx
from sqlalchemy import func, select

from luster_app import routes
from luster_app.context import AppContext
from luster_app.models import Asset, AssetKind, Shoot
from luster_app.services import account
from luster_app.services.retention import retention_notice
from luster_app.services import auth as auth_service
from luster_app.services.errors import ServiceError
from luster_app.state import AuthState, app_context


def holdings(context: AppContext, user_id: uuid.UUID) -> tuple[int, int]:
    """How many shoots and photos (originals) the user has."""
    with context.session() as session:
        shoots = session.execute(select(func.count()).select_from(Shoot).where(Shoot.user_id == user_id)).scalar_one()
        photos = session.execute(
            select(func.count()).select_from(Asset).where(Asset.user_id == user_id, Asset.kind == AssetKind.ORIGINAL)
        ).scalar_one()
    return shoots, photos


def close(context: AppContext, user_id: uuid.UUID, access_token: str) -> None:
    with context.session() as session:
        account.close_account(session=session, storage=context.storage, settings=context.settings, user_id=user_id)
    auth_service.sign_out(auth=context.auth, access_token=access_token, everywhere=True)


class AccountState(AuthState):
    """Counts for the closing confirmation, and the closing itself."""

    shoot_count: int = 0
    photo_count: int = 0
    close_open: bool = False
    close_error: str = ""
    what_stays: str = account.WHAT_STAYS
    retention: str = ""

    @rx.event
    async def load(self):
        user = self._signed_in_user()
        if user is None:
            yield self._sign_in_first()
            return
        self._load_credits(user)
        self.retention = retention_notice(app_context().settings)
        self.shoot_count, self.photo_count = await asyncio.to_thread(holdings, app_context(), user.id)

    @rx.event
    def set_close_open(self, is_open: bool):
        self.close_open, self.close_error = is_open, ""

    @rx.event
    async def close_account(self):
        """Delete everything, end every session, and leave for the landing page."""
        user = self._signed_in_user()
        if user is None:
            return self._sign_in_first()
        try:
            await asyncio.to_thread(close, app_context(), user.id, self.access_token)
        except ServiceError as exc:
            self.close_error = str(exc)
            return None
        self.close_open = False
        self._forget_session()
        return rx.redirect(routes.LANDING + "?closed=1")
