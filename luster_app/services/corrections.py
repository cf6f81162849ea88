"""What the corrections (straight verticals, ...) did to a job's photo, kept on the job."""

from __future__ import annotations

import uuid
from typing import Any

from sqlalchemy import update
from sqlmodel import Session

from luster_app.models import Shoot
from luster_app.services.shoots import get_shoot


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
