"""What the corrections (straight verticals, ...) did to a job's photo, kept on the job."""

from __future__ import annotations

import uuid
from typing import Any

from sqlalchemy import update
from sqlmodel import Session

from luster_app.models import Job, Shoot
from luster_app.services.shoots import get_shoot


def record_corrections(*, session: Session, job_id: uuid.UUID, lease_token: str, outcome: dict[str, Any]) -> None:
    """Keep what this attempt's corrections did on the job (only while the attempt holding
    `lease_token` holds its lease; a later attempt's outcome replaces an earlier one's)."""
    session.execute(update(Job).where(Job.id == job_id, Job.lease_token == lease_token).values(corrections=outcome))
    session.commit()


def corrections_note(corrections: dict[str, Any] | None) -> str:
    """What the corrections did, as one sentence for the job page ("" when none was asked for)."""
    text = "; ".join((corrections or {}).get("notes") or [])
    return f"{text[:1].upper()}{text[1:]}." if text else ""


def set_auto_privacy(*, session: Session, user_id: uuid.UUID, shoot_id: uuid.UUID, on: bool) -> None:
    """Turn the shoot's Auto privacy on or off: whether its new jobs blur faces and plates unless they say."""
    get_shoot(session=session, user_id=user_id, shoot_id=shoot_id)  # NotFound for anyone else's
    session.commit()  # a fresh transaction that starts with its write (SQLite cannot upgrade a read)
    session.execute(update(Shoot).where(Shoot.id == shoot_id, Shoot.user_id == user_id).values(auto_privacy=on))
    session.commit()
