"""Direct uploads: presign, the browser sends the bytes to storage, then complete."""

from __future__ import annotations

import uuid
from datetime import datetime

from pydantic import BaseModel, Field
from starlette.concurrency import run_in_threadpool

from luster_app.api.deps import Ctx, CurrentUser, DbSession, api_router
from luster_app.services.shoots import AssetView, get_asset_with_urls
from luster_app.services.uploads import complete_upload_in_turn, presign_upload

router = api_router(tags=["uploads"])


class PresignIn(BaseModel):
    shoot_id: uuid.UUID
    filename: str = Field(min_length=1, max_length=1000)
    content_type: str = Field(default="", max_length=200)
    size: int
    allow_duplicate: bool = False


class UploadOut(BaseModel):
    method: str
    url: str
    fields: dict[str, str] = Field(default_factory=dict)
    headers: dict[str, str] = Field(default_factory=dict)


class PresignOut(BaseModel):
    asset_id: uuid.UUID
    upload: UploadOut
    expires_at: datetime


@router.post("/uploads/presign", response_model=PresignOut)
def post_presign(body: PresignIn, user: CurrentUser, session: DbSession, context: Ctx) -> PresignOut:
    """A pending photo and how to upload it; 413 too big, 415 not a photo type, 409 already in the shoot."""
    presigned = presign_upload(
        session=session,
        storage=context.storage,
        settings=context.settings,
        user_id=user.id,
        shoot_id=body.shoot_id,
        filename=body.filename,
        content_type=body.content_type,
        size=body.size,
        allow_duplicate=body.allow_duplicate,
    )
    upload = presigned.upload
    return PresignOut(
        asset_id=presigned.asset_id,
        upload=UploadOut(method=upload.method, url=upload.url, fields=upload.fields, headers=upload.headers),
        expires_at=presigned.expires_at,
    )


@router.post("/uploads/{asset_id}/complete", response_model=AssetView)
async def post_complete(asset_id: uuid.UUID, user: CurrentUser, session: DbSession, context: Ctx) -> AssetView:
    """Verify the uploaded photo and make its thumbnail: 200 `ready`, 422 with the reason it was
    rejected, or 503 with Retry-After when its turn among this process's checks does not come soon."""
    await complete_upload_in_turn(
        session=session, storage=context.storage, settings=context.settings, user_id=user.id, asset_id=asset_id,
        limits=context.upload_checks,
    )
    return await run_in_threadpool(
        get_asset_with_urls,
        session=session, storage=context.storage, settings=context.settings, user_id=user.id, asset_id=asset_id,
    )
