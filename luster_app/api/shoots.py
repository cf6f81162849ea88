"""Shoots and their photos."""

from __future__ import annotations

import uuid

from pydantic import BaseModel

from luster_app.api.deps import Ctx, CurrentUser, DbSession, api_router
from luster_app.services.deletion import Removed, delete_asset, delete_shoot
from luster_app.services.shoots import (
    AssetView, ShootSummary, create_shoot, list_assets_with_urls, list_shoots, shoot_summary, update_shoot,
)

router = api_router(tags=["shoots"])


class ShootIn(BaseModel):
    name: str
    address: str | None = None


class ShootChange(BaseModel):
    """Only the fields sent change; `"address": null` (or "") clears the address."""

    name: str | None = None
    address: str | None = None


class RemovedOut(BaseModel):
    photos: int
    outputs: int
    jobs_canceled: int
    objects_pending: int  # stored files storage refused for now; they are deleted on a later try

    @classmethod
    def of(cls, removed: Removed) -> RemovedOut:
        return cls.model_validate(removed, from_attributes=True)


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


@router.patch("/shoots/{shoot_id}", response_model=ShootSummary)
def patch_shoot(shoot_id: uuid.UUID, body: ShootChange, user: CurrentUser, session: DbSession, context: Ctx) -> ShootSummary:
    """Rename a shoot or change its address; 404 for another user's shoot."""
    update_shoot(
        session=session, user_id=user.id, shoot_id=shoot_id, name=body.name, address=body.address,
        change_address="address" in body.model_fields_set,
    )
    return shoot_summary(session=session, storage=context.storage, settings=context.settings, user_id=user.id, shoot_id=shoot_id)


@router.delete("/shoots/{shoot_id}", response_model=RemovedOut)
def remove_shoot(shoot_id: uuid.UUID, user: CurrentUser, session: DbSession, context: Ctx) -> RemovedOut:
    """Delete a shoot with every photo, output and stored file in it; its queued jobs are cancelled
    (credits released). 409 while one of its photos is being enhanced; 404 for another user's."""
    return RemovedOut.of(delete_shoot(session=session, storage=context.storage, settings=context.settings, user_id=user.id, shoot_id=shoot_id))


@router.delete("/assets/{asset_id}", response_model=RemovedOut)
def remove_asset(asset_id: uuid.UUID, user: CurrentUser, session: DbSession, context: Ctx) -> RemovedOut:
    """An original: delete the photo with all its outputs, thumbnails and stored files, cancelling
    its queued jobs (credits released); 409 while it is being enhanced. An output: delete that
    version only. 404 for another user's."""
    return RemovedOut.of(delete_asset(session=session, storage=context.storage, settings=context.settings, user_id=user.id, asset_id=asset_id))
