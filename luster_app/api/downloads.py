"""Downloads of enhanced photos: one output, or a shoot's outputs as one streamed ZIP.

API clients use their bearer token; the web UI asks for a short-lived link (made after an
ownership check) and lets the browser open it, since a download cannot carry a header.
"""

from __future__ import annotations

import uuid

from fastapi import APIRouter, Query
from fastapi.responses import RedirectResponse, Response, StreamingResponse

from luster_app.api.deps import Ctx, CurrentUser, DbSession
from luster_app.context import AppContext
from luster_app.services import downloads
from luster_app.storage.base import attachment_disposition

router = APIRouter(tags=["downloads"])


def _output_response(context: AppContext, file: downloads.OutputFile) -> Response:
    if not file.captioned:
        # Untouched outputs come straight from storage, through its own short-lived signed URL.
        url = context.storage.signed_get_url(
            file.storage_key, expires_in=context.settings.signed_url_ttl_seconds, download_name=file.filename
        )
        return RedirectResponse(url, status_code=307)
    chunks = downloads.output_chunks(storage=context.storage, file=file, max_pixels=context.settings.max_image_pixels)
    return StreamingResponse(
        chunks, media_type="image/jpeg", headers={"Content-Disposition": attachment_disposition(file.filename)}
    )


def _zip_response(context: AppContext, session: DbSession, user_id: uuid.UUID, shoot_id: uuid.UUID) -> Response:
    shoot, files = downloads.shoot_output_files(session=session, user_id=user_id, shoot_id=shoot_id)
    session.commit()  # nothing of the database is needed while the ZIP streams
    chunks = downloads.zip_chunks(storage=context.storage, files=files, max_pixels=context.settings.max_image_pixels)
    return StreamingResponse(
        chunks,
        media_type="application/zip",
        headers={"Content-Disposition": attachment_disposition(downloads.zip_filename(shoot)), "Cache-Control": "no-store"},
    )


@router.get("/shoots/{shoot_id}/outputs.zip", response_class=StreamingResponse)
def get_shoot_zip(shoot_id: uuid.UUID, user: CurrentUser, session: DbSession, context: Ctx) -> Response:
    """Every enhanced photo of the caller's shoot as one ZIP, streamed as it is written; 404 for another's shoot."""
    return _zip_response(context, session, user.id, shoot_id)


@router.get("/outputs/{asset_id}/download")
def get_output(asset_id: uuid.UUID, user: CurrentUser, session: DbSession, context: Ctx) -> Response:
    """One enhanced photo as a file: captioned "Digitally altered" when its shoot asks for it."""
    file = downloads.output_file(session=session, user_id=user.id, asset_id=asset_id)
    return _output_response(context, file)


@router.get("/downloads", include_in_schema=False)
def get_download(session: DbSession, context: Ctx, token: str = Query(min_length=20, max_length=200)) -> Response:
    """A browser download link from the web UI: an output or a shoot ZIP; 403 once it has expired."""
    target = downloads.resolve_download_link(session=session, token=token)
    if target.shoot_id is not None:
        return _zip_response(context, session, target.user_id, target.shoot_id)
    assert target.asset_id is not None
    file = downloads.output_file(session=session, user_id=target.user_id, asset_id=target.asset_id)
    return _output_response(context, file)
