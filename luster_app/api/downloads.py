"""Downloads of enhanced photos: one output, or a shoot's outputs as one streamed ZIP.

API clients use their bearer token; the web UI asks for a short-lived link (made after an
ownership check) and lets the browser open it, since a download cannot carry a header.
"""

from __future__ import annotations

import uuid
from typing import Annotated, Literal

from fastapi import Query
from fastapi.responses import RedirectResponse, Response, StreamingResponse

from luster_app.api.deps import Ctx, CurrentUser, DbSession, api_router
from luster_app.context import AppContext
from luster_app.services import downloads
from luster_app.services.errors import Invalid
from luster_app.storage.base import attachment_disposition

router = api_router(tags=["downloads"])

Versions = Annotated[Literal["latest", "all"], Query(description="each photo's latest version, or every version")]
Size = Annotated[Literal["full", "mls", "web"], Query(
    description="full: as enhanced; mls: 2048 px on the long edge (the common MLS limit); web: 1280 px")]
Assets = Annotated[str | None, Query(max_length=20_000, description="comma-separated photo (original asset) ids; none: every photo")]


def _asset_ids(assets: str | None) -> list[uuid.UUID] | None:
    if assets is None:
        return None
    try:
        return [uuid.UUID(part.strip()) for part in assets.split(",") if part.strip()]
    except ValueError:
        raise Invalid("assets: give photo ids separated by commas.") from None


def _output_response(context: AppContext, session: DbSession, file: downloads.OutputFile) -> Response:
    if file.as_stored:
        # Untouched outputs come straight from storage, through its own short-lived signed URL.
        url = context.storage.signed_get_url(
            file.storage_key, expires_in=context.settings.signed_url_ttl_seconds, download_name=file.filename
        )
        return RedirectResponse(url, status_code=307)
    # Made before the response starts, so a busy process can still answer 503 with Retry-After;
    # no database connection is held while it waits for its turn.
    session.commit()
    data = downloads.prepared_bytes(
        storage=context.storage, file=file, limits=context.upload_checks, max_pixels=context.settings.max_image_pixels
    )
    return Response(data, media_type="image/jpeg", headers={"Content-Disposition": attachment_disposition(file.filename)})


def _zip_response(
    context: AppContext, session: DbSession, user_id: uuid.UUID, shoot_id: uuid.UUID, *, versions: str, size: str,
    assets: str | None,
) -> Response:
    shoot, files = downloads.shoot_output_files(session=session, user_id=user_id, shoot_id=shoot_id, versions=versions,
                                                size=size, assets=_asset_ids(assets))
    session.commit()  # nothing of the database is needed while the ZIP streams
    chunks = downloads.zip_chunks(
        storage=context.storage, files=files, limits=context.upload_checks, max_pixels=context.settings.max_image_pixels
    )
    return StreamingResponse(
        chunks,
        media_type="application/zip",
        headers={"Content-Disposition": attachment_disposition(downloads.zip_filename(shoot)), "Cache-Control": "no-store"},
    )


@router.get("/shoots/{shoot_id}/outputs.zip", response_class=StreamingResponse)
def get_shoot_zip(
    shoot_id: uuid.UUID, user: CurrentUser, session: DbSession, context: Ctx, versions: Versions = "all",
    size: Size = "full", assets: Assets = None,
) -> Response:
    """The delivered photos of the caller's shoot as one ZIP, streamed as it is written: every version
    or each photo's latest, of every photo or those in `assets`, at full, MLS or web size; files named
    `{nn}-{photo}-{preset}.jpg` in shoot order, sRGB, no location. Edits held for review are never
    in it. 404 for another user's shoot or photo."""
    return _zip_response(context, session, user.id, shoot_id, versions=versions, size=size, assets=assets)


@router.get("/outputs/{asset_id}/download")
def get_output(asset_id: uuid.UUID, user: CurrentUser, session: DbSession, context: Ctx, size: Size = "full") -> Response:
    """One enhanced photo as a file, at full, MLS or web size: captioned "Digitally altered" when its shoot asks for it."""
    file = downloads.output_file(session=session, user_id=user.id, asset_id=asset_id, size=size)
    return _output_response(context, session, file)


@router.get("/downloads", include_in_schema=False)
def get_download(
    session: DbSession, context: Ctx, token: str = Query(min_length=20, max_length=200), versions: Versions = "all",
    size: Size = "full", assets: Assets = None,
) -> Response:
    """A browser download link from the web UI: an output or a shoot ZIP, with the same choices as
    the API's; 403 once it has expired."""
    target = downloads.resolve_download_link(session=session, token=token)
    if target.shoot_id is not None:
        return _zip_response(context, session, target.user_id, target.shoot_id, versions=versions, size=size,
                             assets=assets)
    assert target.asset_id is not None
    file = downloads.output_file(session=session, user_id=target.user_id, asset_id=target.asset_id, size=size)
    return _output_response(context, session, file)
