"""The credit ledger: every balance change is a ledger row, and UNIQUE(kind, ref) makes it happen once."""

from __future__ import annotations

import uuid

from sqlalchemy import update
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session

from luster_app.models import CreditLedger, Credits


def apply_ledger_entry(
    *, session: Session, user_id: uuid.UUID, delta: int, kind: str, ref: str, note: str = ""
) -> bool:
    """Record `delta` for (kind, ref) and move the balance, inside the caller's transaction.

    Returns False, changing nothing, when that (kind, ref) was already recorded. Uses a
    savepoint so the caller's transaction survives the duplicate.
    """
    try:
        with session.begin_nested():
            session.add(CreditLedger(user_id=user_id, delta=delta, kind=kind, ref=ref, note=note))
            session.flush()
    except IntegrityError:
        return False
    # Relative UPDATE: concurrent charges and grants never overwrite each other.
    session.execute(update(Credits).where(Credits.user_id == user_id).values(balance=Credits.balance + delta))
    return True


def grant_adjustment(*, session: Session, user_id: uuid.UUID, delta: int, reason: str) -> None:
    """An operator's adjustment (positive or negative), committed."""
    apply_ledger_entry(
        session=session, user_id=user_id, delta=delta, kind="adjustment", ref=f"adj_{uuid.uuid4().hex}", note=reason
    )
    session.commit()
