"""Honest edits: the owner's decision on an edit held for review (`needs_review`).

The worker holds an AI edit that redrew more outside its preset's region than the settings
allow: its output is stored `held` (never listed, downloaded or shared) and nothing is
charged; the job keeps its credit reserved until its owner decides. Accepting delivers the
output and charges one credit (the ledger's (kind `job`, ref job id) makes it once, however
often or concurrently it is asked); rejecting charges nothing and frees the credit.
"""

from __future__ import annotations

import uuid

from sqlalchemy import select, update
from sqlmodel import Session

from luster_app.models import Asset, AssetStatus, Job, JobStatus, LedgerKind, utcnow
from luster_app.services.credits import apply_ledger_entry
from luster_app.services.errors import Conflict, NotFound
from luster_app.services.jobs import add_event, lock_credits, start_transaction
from luster_app.services.storage_cleanup import record_deletions

REJECTED_MESSAGE = "You rejected this edit; nothing was charged. Run it again or pick another preset."
REJECTED_REASON = "Rejected by its owner after review."


def accept_job(*, session: Session, user_id: uuid.UUID, job_id: uuid.UUID) -> Job:
    """Deliver the held output and charge one credit; Conflict unless the job awaits review."""
    return _decide(session, user_id, job_id, accept=True)


def reject_job(*, session: Session, user_id: uuid.UUID, job_id: uuid.UUID) -> Job:
    """Discard the held output and charge nothing; Conflict unless the job awaits review."""
    return _decide(session, user_id, job_id, accept=False)


def _decide(session: Session, user_id: uuid.UUID, job_id: uuid.UUID, *, accept: bool) -> Job:
    start_transaction(session)
    try:
        lock_credits(session, user_id)  # first: one credit decision for this user at a time
        job = session.execute(select(Job).where(Job.id == job_id, Job.user_id == user_id)).scalar_one_or_none()
        if job is None:
            raise NotFound("Job not found.")
        values = (
            {"status": JobStatus.SUCCEEDED}
            if accept
            else {"status": JobStatus.FAILED, "error_code": "rejected_by_owner", "error_message": REJECTED_MESSAGE}
        )
        # Conditional on the state, so two decisions at once cannot both apply.
        decided = session.execute(
            update(Job).where(Job.id == job_id, Job.status == JobStatus.NEEDS_REVIEW).values(finished_at=utcnow(), **values)
        ).rowcount
        if not decided:
            raise Conflict(f"This edit is not waiting for review; the job is {job.status.replace('_', ' ')}.")
        held = (Asset.job_id == job_id, Asset.user_id == user_id, Asset.status == AssetStatus.HELD)
        if accept:
            # Charged only with an output to deliver (its owner may have deleted the held one).
            if not session.execute(update(Asset).where(*held).values(status=AssetStatus.READY)).rowcount:
                raise Conflict("This edit's output is gone, so it cannot be accepted; reject it and run it again.")
            apply_ledger_entry(session=session, user_id=user_id, delta=-1, kind=LedgerKind.JOB, ref=str(job_id))
        else:
            rejected = list(session.execute(select(Asset.id, Asset.storage_key).where(*held)).all())
            thumbs = session.execute(
                select(Asset.storage_key).where(Asset.parent_asset_id.in_([asset_id for asset_id, _ in rejected]))
            ).scalars()
            # Never delivered: its stored files go (the worker's sweep removes them); the rows stay as the record.
            record_deletions(session, [key for _, key in rejected] + list(thumbs))
            session.execute(update(Asset).where(*held).values(status=AssetStatus.REJECTED, reject_reason=REJECTED_REASON))
        add_event(session, job_id, "accepted" if accept else "rejected")
        session.commit()
    except BaseException:
        session.rollback()
        raise
    session.refresh(job)
    return job
