"""Shoots and their photos."""

from __future__ import annotations

import uuid

from fastapi import APIRouter
from pydantic import BaseModel

from luster_app.api.deps import Ctx, CurrentUser, DbSession
from luster_app.services.shoots import AssetView, ShootSummary, create_shoot, list_assets_with_urls, list_shoots

router = APIRouter(tags=["shoots"])


class ShootIn(BaseModel):
    name: str
    address: str | None = None


@router.post("/shoots", status_code=201, response_model=ShootSummary)
def post_shoot(body: ShootIn, user: CurrentUser, session: DbSession) -> ShootSummary:
    """Create a shoot (one listing)."""
    shoot = create_shoot(session=session, user_id=user.id, name=body.name, address=body.address)
    return ShootSummary(
        id=shoot.id, name=shoot.name, address=shoot.address, created_at=shoot.created_at, photo_count=0, cover_thumb_url=None
    )


@router.get("/shoots", response_model=list[ShootSummary])
def get_shoots(user: CurrentUser, session: DbSession, context: Ctx) -> list[ShootSummary]:
    """The caller's shoots, newest first, with photo counts and cover thumbnails."""
    return list_shoots(session=session, storage=context.storage, settings=context.settings, user_id=user.id)


@router.get("/shoots/{shoot_id}/assets", response_model=list[AssetView])
def get_shoot_assets(shoot_id: uuid.UUID, user: CurrentUser, session: DbSession, context: Ctx) -> list[AssetView]:
    """The shoot's photos with status, size, dimensions and signed URLs; 404 for another user's shoot."""
    return list_assets_with_urls(
        session=session, storage=context.storage, settings=context.settings, user_id=user.id, shoot_id=shoot_id
    )
