"""Optional retention (ORIGINAL_RETENTION_DAYS): photos older than that go, with their outputs.

Originals may carry the photographer's GPS; a deployment can choose not to keep them forever.
The worker's sweep deletes each expired photo as the photographer's own delete would; one being
enhanced right now waits for the next pass.
"""

from __future__ import annotations

import logging
from contextlib import suppress
from datetime import timedelta

from sqlalchemy import select
from sqlmodel import Session

from luster_app.config import Settings
from luster_app.models import Asset, AssetKind, utcnow
from luster_app.services.brackets import delete_bracket
from luster_app.services.deletion import delete_asset
from luster_app.services.errors import Conflict, NotFound
from luster_app.storage import Storage

log = logging.getLogger(__name__)

BATCH = 100


def retention_notice(settings: Settings) -> str:
    """What the account page says about how long photos are kept."""
    days = settings.original_retention_days
    if not days:
        return "Your photos are kept until you delete them."
    return f"Photos are deleted, with their enhanced versions, {days} day{'s' if days != 1 else ''} after upload."


def apply_retention(*, session: Session, storage: Storage, settings: Settings, limit: int = BATCH) -> int:
    """Delete up to `limit` photos older than the retention period; returns how many went."""
    days = settings.original_retention_days
    if not days:
        return 0
    cutoff = utcnow() - timedelta(days=days)
    expired = session.execute(
        select(Asset.user_id, Asset.id, Asset.bracket_id)
        .where(Asset.kind == AssetKind.ORIGINAL, Asset.created_at < cutoff)
        .order_by(Asset.created_at)
        .limit(limit)
    ).all()
    deleted = 0
    for user_id, asset_id, bracket_id in expired:
        try:
            if bracket_id is not None:  # a bracket's frame goes with its group (ungrouped first)
                with suppress(NotFound):  # ungrouped already, by another of its frames
                    delete_bracket(session=session, storage=storage, settings=settings, user_id=user_id, bracket_id=bracket_id)
            delete_asset(session=session, storage=storage, settings=settings, user_id=user_id, asset_id=asset_id)
            deleted += 1
        except (Conflict, NotFound):
            pass  # being enhanced (next pass), or deleted meanwhile
    if deleted:
        log.info("retention: %d photos older than %d days deleted", deleted, days)
    return deleted
