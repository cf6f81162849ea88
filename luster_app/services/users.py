"""Users and their credit balance rows, created exactly once on first sign-in."""

from __future__ import annotations

import uuid

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session

from luster_app.auth.base import AuthError
from luster_app.models import Credits, User
from luster_app.services.errors import Conflict

ACCOUNT_CLOSED = "This Luster account was closed: its photos are deleted and it can no longer sign in."


def ensure_user(*, session: Session, user_id: uuid.UUID, email: str) -> User:
    """The user with this id, created with a zero-balance credits row if new (race-safe).

    AuthError for a closed account: every token issued for it, by any provider, is refused."""
    user = session.get(User, user_id)
    if user is not None and user.closed_at is not None:
        raise AuthError(ACCOUNT_CLOSED)
    if user is not None:
        return user
    if _create_user(session=session, user_id=user_id, email=email):
        return session.get(User, user_id)
    user = session.get(User, user_id)
    if user is None:
        # The email is taken by an account with another id (e.g. made under another auth provider).
        raise Conflict("This email already belongs to another Luster account.")
    return user


def ensure_user_for_email(*, session: Session, email: str) -> User:
    """The user with this email, created with a new id and a zero-balance credits row if new (race-safe)."""
    user = find_user_by_email(session=session, email=email)
    if user is not None:
        return user
    _create_user(session=session, user_id=uuid.uuid4(), email=email)
    user = find_user_by_email(session=session, email=email)
    if user is None:
        raise Conflict("Could not create the account; try again.")
    return user


def _create_user(*, session: Session, user_id: uuid.UUID, email: str) -> bool:
    """Insert the user and its credits row in one transaction; False when a concurrent request won."""
    # End the read transaction first: SQLite cannot upgrade a stale read snapshot to a writer (it
    # fails with "database is locked" at once), while a fresh write transaction waits its turn.
    session.commit()
    try:
        session.add(User(id=user_id, email=email.strip().lower()))
        session.flush()
        session.add(Credits(user_id=user_id, balance=0))
        session.commit()
    except IntegrityError:
        # The loser of the race rolls back; the unique id and email make the winner's rows the only ones.
        session.rollback()
        return False
    return True


def find_user_by_email(*, session: Session, email: str) -> User | None:
    """The user with this email (compared lower-cased), if any."""
    return session.execute(select(User).where(User.email == email.strip().lower())).scalars().first()


def credit_summary(*, session: Session, user_id: uuid.UUID) -> dict[str, int]:
    """Balance, credits reserved by queued/processing jobs, and what is available to spend."""
    # `reserved` is kept by the database as jobs come and go (Credits.reserved).
    balance, reserved = session.execute(select(Credits.balance, Credits.reserved).where(Credits.user_id == user_id)).first() or (0, 0)
    return {"balance": balance, "reserved": reserved, "available": balance - reserved}
