"""What the corrections (straight verticals, ...) did to a job's photo, kept on the job."""

from __future__ import annotations

import uuid
from typing import Any

from sqlalchemy import update
from sqlmodel import Session

from luster_app.models import Job


def record_corrections(*, session: Session, job_id: uuid.UUID, owner: str, outcome: dict[str, Any]) -> None:
    """Keep what this attempt's corrections did on the job (only while `owner` holds its lease;
    a later attempt's outcome replaces an earlier one's)."""
    session.execute(update(Job).where(Job.id == job_id, Job.lease_owner == owner).values(corrections=outcome))
    session.commit()


def corrections_note(corrections: dict[str, Any] | None) -> str:
    """What the corrections did, as one sentence for the job page ("" when none was asked for)."""
    notes = (corrections or {}).get("notes") or []
    return "; ".join(notes).capitalize() + ("." if notes else "")
