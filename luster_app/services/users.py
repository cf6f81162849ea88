"""Users and their credit balance rows, created exactly once on first sign-in."""

from __future__ import annotations

import uuid

from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session

from luster_app.models import Credits, Job, JobStatus, User


def ensure_user(*, session: Session, user_id: uuid.UUID, email: str) -> User:
    """The user with this id, created with a zero-balance credits row if new (race-safe)."""
    user = session.get(User, user_id)
    if user is not None:
        return user
    try:
        user = User(id=user_id, email=email.strip().lower())
        session.add(user)
        session.flush()
        session.add(Credits(user_id=user_id, balance=0))
        session.commit()
    except IntegrityError:
        # A concurrent first request created the row; use theirs.
        session.rollback()
        user = session.get(User, user_id)
        if user is None:
            raise
    return user


def find_user_by_email(*, session: Session, email: str) -> User | None:
    return session.execute(select(User).where(User.email == email.strip().lower())).scalars().first()


def credit_summary(*, session: Session, user_id: uuid.UUID) -> dict[str, int]:
    """Balance, credits reserved by queued/processing jobs, and what is available to spend."""
    balance = session.execute(select(Credits.balance).where(Credits.user_id == user_id)).scalar() or 0
    reserved = session.execute(
        select(func.count()).select_from(Job).where(Job.user_id == user_id, Job.status.in_(JobStatus.ACTIVE))
    ).scalar_one()
    return {"balance": balance, "reserved": reserved, "available": balance - reserved}
