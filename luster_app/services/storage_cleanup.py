"""Stored objects whose rows are deleted: removed from storage, and retried until storage agrees.

A deletion first records every key in `pending_deletions` inside the transaction that deletes
the rows, so a crash or a storage outage between the two cannot forget an object. Right after
the commit the caller removes the objects (`delete_pending`); whatever storage refuses stays
recorded and the worker's sweep (`sweep_pending_deletions`) tries it again with a growing wait.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from datetime import datetime, timedelta

from sqlalchemy import delete, insert, select, update
from sqlmodel import Session

from luster_app.models import PendingDeletion, utcnow
from luster_app.storage import Storage

log = logging.getLogger(__name__)

RETRY_BASE_SECONDS = 30.0
RETRY_MAX_SECONDS = 6 * 3600.0
SWEEP_BATCH = 200


def record_deletions(session: Session, keys: Iterable[str], *, due_at: datetime | None = None) -> list[int]:
    """Record `keys` for deletion (now, or from `due_at`) inside the caller's transaction; returns the rows' ids."""
    now = utcnow()
    rows = [{"storage_key": key, "created_at": now, "attempts": 0, "next_attempt_at": due_at or now} for key in dict.fromkeys(keys)]
    if not rows:
        return []
    return list(session.execute(insert(PendingDeletion).returning(PendingDeletion.id), rows).scalars())


def delete_pending(*, session: Session, storage: Storage, ids: list[int]) -> int:
    """Remove the recorded objects from storage now; returns how many storage refused (kept for
    the sweep). Each outcome is committed on its own, so one failure holds up no other."""
    failed = 0
    for deletion in session.execute(select(PendingDeletion).where(PendingDeletion.id.in_(ids))).scalars().all():
        failed += not _delete_one(session=session, storage=storage, deletion=deletion)
    return failed


def sweep_pending_deletions(
    *, session: Session, storage: Storage, limit: int = SWEEP_BATCH, now: datetime | None = None
) -> tuple[int, int]:
    """One pass of the worker's sweep over the deletions due by `now`: (deleted, still failing)."""
    due = session.execute(
        select(PendingDeletion).where(PendingDeletion.next_attempt_at <= (now or utcnow())).order_by(PendingDeletion.next_attempt_at).limit(limit)
    ).scalars().all()
    failed = sum(not _delete_one(session=session, storage=storage, deletion=deletion) for deletion in due)
    return len(due) - failed, failed


def _delete_one(*, session: Session, storage: Storage, deletion: PendingDeletion) -> bool:
    deletion_id, key, attempts = deletion.id, deletion.storage_key, deletion.attempts
    session.commit()  # no transaction stays open across a storage call
    try:
        storage.delete(key)  # absent is fine: a second delete of the same key succeeds
    except Exception as exc:  # noqa: BLE001  (any storage failure is retried; its kind is recorded)
        wait = min(RETRY_MAX_SECONDS, RETRY_BASE_SECONDS * 2**attempts)
        session.execute(
            update(PendingDeletion)
            .where(PendingDeletion.id == deletion_id)
            .values(attempts=attempts + 1, last_error=type(exc).__name__[:500], next_attempt_at=utcnow() + timedelta(seconds=wait))
        )
        session.commit()
        log.warning("storage refused deleting an object (%s); trying again in %.0fs", type(exc).__name__, wait)
        return False
    session.execute(delete(PendingDeletion).where(PendingDeletion.id == deletion_id))
    session.commit()
    return True
