"""The credit ledger: every balance change is a ledger row, and UNIQUE(kind, ref) makes it happen once."""

from __future__ import annotations

import uuid

from sqlalchemy import update
from sqlalchemy.dialects import postgresql, sqlite
from sqlmodel import Session

from luster_app.models import CreditLedger, Credits, utcnow

# Both dialects speak INSERT … ON CONFLICT DO NOTHING, which needs no savepoint.
_INSERTS = {"postgresql": postgresql.insert, "sqlite": sqlite.insert}


def apply_ledger_entry(
    *, session: Session, user_id: uuid.UUID, delta: int, kind: str, ref: str, note: str = ""
) -> bool:
    """Record `delta` for (kind, ref) and move the balance, inside the caller's transaction.

    Returns False, changing nothing, when that (kind, ref) was already recorded. A concurrent
    transaction recording the same (kind, ref) makes this one wait on the unique index, then
    see the duplicate; the caller's transaction survives either way.
    """
    insert = _INSERTS[session.get_bind().dialect.name]
    recorded = session.execute(
        insert(CreditLedger)
        .values(user_id=user_id, delta=delta, kind=kind, ref=ref, note=note, created_at=utcnow())
        .on_conflict_do_nothing(index_elements=["kind", "ref"])
        .returning(CreditLedger.id)
    ).first()
    if recorded is None:
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
