"""Sharing a shoot's disclosure page (AB 723), and the public page itself.

The owner's routes are under /api; the public page and its photos are at `/disclosure/{token}`,
where no sign-in is asked: the unguessable token is the capability. The page is not indexed
(meta robots and `X-Robots-Tag`), not cached (a revoked link stops at once) and runs no script.
"""

from __future__ import annotations

import html
import uuid
from datetime import datetime

from fastapi import Path
from fastapi.responses import HTMLResponse, Response
from pydantic import BaseModel

from luster_app.api.deps import Ctx, CurrentUser, DbSession, api_router
from luster_app.services import sharing
from luster_app.services.errors import NotFound
from luster_app.storage.base import attachment_disposition

router = api_router(tags=["sharing"])
public_router = api_router(include_in_schema=False)

TOKEN = Path(min_length=20, max_length=64, pattern=r"^[A-Za-z0-9_-]+$")
PAGE_POLICY = ("default-src 'none'; img-src 'self'; style-src 'unsafe-inline'; base-uri 'none'; "
               "form-action 'none'; frame-ancestors 'none'")
PUBLIC_HEADERS = {"X-Robots-Tag": "noindex, nofollow, noarchive", "Cache-Control": "no-store",
                  "Referrer-Policy": "no-referrer"}
# The photos may stay a few minutes in the viewer's own browser (not in shared caches): scrolling
# back does not make them again, and a revoked link's photos are gone from there soon after.
PHOTO_HEADERS = {**PUBLIC_HEADERS, "Cache-Control": "private, max-age=300"}


class ShareOut(BaseModel):
    """The public disclosure page of a shoot: `url` to publish with the listing."""

    shared: bool
    url: str | None = None
    created_at: datetime | None = None


def _out(context: Ctx, share: sharing.Share | None) -> ShareOut:
    if share is None:
        return ShareOut(shared=False)
    return ShareOut(shared=True, url=context.settings.app_url + share.path, created_at=share.created_at)


@router.post("/shoots/{shoot_id}/share", response_model=ShareOut)
def post_share(shoot_id: uuid.UUID, user: CurrentUser, session: DbSession, context: Ctx) -> ShareOut:
    """Share the shoot's disclosure page (AB 723): its delivered photos, which were digitally altered,
    and each one's unaltered original without location, for anyone with the link. Sharing again
    gives the same link; 404 for another user's shoot."""
    return _out(context, sharing.share_shoot(session=session, user_id=user.id, shoot_id=shoot_id))


@router.get("/shoots/{shoot_id}/share", response_model=ShareOut)
def get_share(shoot_id: uuid.UUID, user: CurrentUser, session: DbSession, context: Ctx) -> ShareOut:
    """Whether the shoot's disclosure page is shared, and its link; 404 for another user's shoot."""
    return _out(context, sharing.get_share(session=session, user_id=user.id, shoot_id=shoot_id))


@router.delete("/shoots/{shoot_id}/share", status_code=204)
def delete_share(shoot_id: uuid.UUID, user: CurrentUser, session: DbSession) -> Response:
    """Stop sharing: the link answers 404 from now on (a later share makes a new link); 404 for another user's shoot."""
    sharing.revoke_share(session=session, user_id=user.id, shoot_id=shoot_id)
    return Response(status_code=204)


def _not_found() -> HTMLResponse:
    body = ("<!doctype html><html lang=en><head><meta charset=utf-8><meta name=robots content=noindex>"
            "<meta name=viewport content='width=device-width, initial-scale=1'><title>Not found</title></head>"
            f"<body><main><h1>Not found</h1><p>{html.escape(sharing.NOT_SHARED)}</p></main></body></html>")
    return HTMLResponse(body, status_code=404, headers={**PUBLIC_HEADERS, "Content-Security-Policy": PAGE_POLICY})


@public_router.get(sharing.PAGE_PREFIX + "/{token}", response_class=HTMLResponse)
def disclosure_page(session: DbSession, token: str = TOKEN) -> HTMLResponse:
    """The public disclosure page; 404 for an unknown or revoked link."""
    try:
        shoot = sharing.public_shoot(session=session, token=token)
    except NotFound:
        return _not_found()
    return HTMLResponse(_page_html(token, shoot), headers={**PUBLIC_HEADERS, "Content-Security-Policy": PAGE_POLICY})


@public_router.get(sharing.PAGE_PREFIX + "/{token}/photos/{output_id}.jpg")
def disclosure_photo(output_id: uuid.UUID, session: DbSession, context: Ctx, token: str = TOKEN) -> Response:
    """A delivered photo of the page at web size; 404 unless the link is live and lists it."""
    data = sharing.public_photo(session=session, storage=context.storage, limits=context.upload_checks, max_pixels=context.settings.max_image_pixels,
                                token=token, output_id=output_id)
    return Response(data, media_type="image/jpeg", headers=PHOTO_HEADERS)


@public_router.get(sharing.PAGE_PREFIX + "/{token}/originals/{original_id}")
def disclosure_original(original_id: uuid.UUID, session: DbSession, context: Ctx, token: str = TOKEN) -> Response:
    """The unaltered original of a photo on the page: its own pixels, no GPS or other location."""
    data, content_type, filename = sharing.public_original(
        session=session, storage=context.storage, limits=context.upload_checks,
        max_pixels=context.settings.max_image_pixels, token=token, original_id=original_id,
    )
    disposition = attachment_disposition(filename).replace("attachment;", "inline;", 1)
    return Response(data, media_type=content_type, headers={**PHOTO_HEADERS, "Content-Disposition": disposition})


STYLE = """
body{margin:0;font-family:system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;color:#1a1a1a;background:#fafafa;line-height:1.5}
main{max-width:72rem;margin:0 auto;padding:1.25rem}
h1{font-size:1.6rem;margin:.25rem 0}
.lead{color:#444;max-width:48rem}
ul{list-style:none;padding:0;margin:1.5rem 0;display:grid;gap:1.25rem;grid-template-columns:repeat(auto-fill,minmax(min(100%,20rem),1fr))}
li{background:#fff;border:1px solid #ddd;border-radius:.5rem;overflow:hidden}
img{display:block;width:100%;height:auto;background:#eee}
.info{padding:.75rem 1rem 1rem}
.tag{display:inline-block;font-weight:600;font-size:.9rem;padding:.15rem .5rem;border-radius:.25rem}
.altered{background:#7a2e00;color:#fff}
.as-is{background:#e6e6e6;color:#1a1a1a}
.what{margin:.5rem 0;color:#333}
a.original{display:inline-flex;align-items:center;min-height:44px;padding:0 1rem;border-radius:.375rem;background:#1f3a8a;color:#fff;text-decoration:none;font-weight:600}
a.original:focus-visible{outline:3px solid #f59e0b;outline-offset:2px}
footer{color:#555;font-size:.9rem;margin-top:2rem}
"""


def _page_html(token: str, shoot: sharing.PublicShoot) -> str:
    name = html.escape(shoot.name)
    address = f"<p>{html.escape(shoot.address)}</p>" if shoot.address else ""
    base = f"{sharing.PAGE_PREFIX}/{token}"
    items = []
    for photo in shoot.photos:
        label = ('<span class="tag altered">Digitally altered</span>' if photo.altered
                 else '<span class="tag as-is">Light and colour adjusted</span>')
        what = f'<p class="what">{html.escape(photo.summary)}</p>' if photo.summary else ""
        items.append(
            f'<li><img src="{base}/photos/{photo.output_id}.jpg" loading="lazy" '
            f'width="{photo.width}" height="{photo.height}" '
            f'alt="Photo {photo.number} as delivered{" (digitally altered)" if photo.altered else ""}">'
            f'<div class="info">{label}{what}'
            f'<a class="original" href="{base}/originals/{photo.original_id}">'
            f"Photo {photo.number}: see the unaltered original</a></div></li>"
        )
    listing = f"<ul>{''.join(items)}</ul>" if items else "<p>No photos have been delivered for this listing yet.</p>"
    return (
        "<!doctype html><html lang=en><head><meta charset=utf-8>"
        "<meta name=viewport content='width=device-width, initial-scale=1'>"
        "<meta name=robots content='noindex, nofollow, noarchive'>"
        f"<title>{name}: photos and their originals</title><style>{STYLE}</style></head><body><main>"
        f"<h1>{name}</h1>{address}"
        '<p class="lead">The listing photos of this property. Photos marked "Digitally altered" were changed '
        "beyond light and colour (for example a new sky or a greener lawn); each photo links to its unaltered "
        "original, as taken, without location data.</p>"
        f"{listing}<footer>Published under California's AB 723 by the listing's photographer.</footer>"
        "</main></body></html>"
    )
