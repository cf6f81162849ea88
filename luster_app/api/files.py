"""The local storage's signed upload and download endpoints: the app plays S3's role (embedded default)."""

from __future__ import annotations

import mimetypes

from fastapi import HTTPException, Query, Request, Response
from fastapi.responses import FileResponse

from luster_app.api.deps import Ctx, api_router
from luster_app.storage.base import attachment_disposition
from luster_app.storage.local import InvalidKey, LocalStorage, ObjectTooLarge, UploadLinkUsed

router = api_router(tags=["files"], include_in_schema=False)


def _local_storage(context: Ctx) -> LocalStorage:
    storage = context.storage
    if not isinstance(storage, LocalStorage):
        raise HTTPException(404, "not found")
    return storage


@router.put("/files/{key:path}", status_code=204)
async def put_file(
    key: str,
    request: Request,
    context: Ctx,
    expires: int,
    sig: str,
    max_bytes: int = Query(alias="max"),
) -> Response:
    """Stream an upload to disk under its signed key; 413 as soon as it passes its signed limit;
    403 if the link was used already (single-use, as the photo is checked once)."""
    storage = _local_storage(context)
    try:
        valid = storage.verify_upload(key, expires=expires, max_bytes=max_bytes, signature=sig)
    except InvalidKey:
        raise HTTPException(404, "not found") from None
    if not valid:
        raise HTTPException(403, "This upload link is invalid or has expired.")
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > max_bytes:
        raise HTTPException(413, "The file is larger than the upload limit.")
    try:
        await storage.receive(key, request.stream(), max_bytes=max_bytes, link_expires=expires)
    except ObjectTooLarge:
        raise HTTPException(413, "The file is larger than the upload limit.") from None
    except UploadLinkUsed:
        raise HTTPException(403, "This upload link has already been used; upload the photo again.") from None
    return Response(status_code=204)


@router.get("/files/{key:path}")
def get_file(key: str, context: Ctx, expires: int, sig: str, name: str = "") -> FileResponse:
    """Serve a stored object to whoever holds a valid signed URL (issued after an ownership check)."""
    storage = _local_storage(context)
    try:
        valid = storage.verify_download(key, expires=expires, download_name=name, signature=sig)
        path = storage.path_for(key)
    except InvalidKey:
        raise HTTPException(404, "not found") from None
    if not valid:
        raise HTTPException(403, "This link is invalid or has expired.")
    if not path.is_file():
        raise HTTPException(404, "not found")
    headers = {"Cache-Control": "private, max-age=300"}
    if name:
        headers["Content-Disposition"] = attachment_disposition(name)
    return FileResponse(path, media_type=mimetypes.guess_type(path.name)[0] or "application/octet-stream", headers=headers)
