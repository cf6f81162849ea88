"""Taking credits back (an operator's adjustment, a refund, a dispute) without spending the credits
queued jobs have reserved, and the drift check that compares each balance with its ledger.

The invariant kept: a user's balance covers their queued and processing jobs (each charges one
credit when it succeeds). A take-back never takes the credits of jobs being processed (their
workers will charge them), and cancels, uncharged and saying why, the newest queued jobs the
balance no longer covers; so the balance never goes below zero from a take-back, and no queued
job charges into negative.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass

from sqlalchemy import func, select
from sqlmodel import Session

from luster_app.models import CreditLedger, Credits, Job, JobStatus, LedgerKind, User
from luster_app.services.credits import apply_ledger_entry
from luster_app.services.errors import Invalid, NotFound
from luster_app.services.jobs import cancel_queued, lock_credits, start_transaction


@dataclass(frozen=True)
class TakeBack:
    """What a take-back did: credits taken (at most those asked) and the queued jobs it canceled."""

    asked: int
    taken: int
    canceled: list[uuid.UUID]


@dataclass(frozen=True)
class Drift:
    """A user whose balance is not the sum of their ledger rows."""

    user_id: uuid.UUID
    email: str
    balance: int
    ledger_sum: int


def takeable(session: Session, user_id: uuid.UUID) -> int:
    """Credits a take-back may remove now: the balance less what jobs being processed will charge.
    The caller holds `lock_credits`."""
    balance = session.execute(select(Credits.balance).where(Credits.user_id == user_id)).scalar() or 0
    processing = session.execute(
        select(func.count()).select_from(Job).where(Job.user_id == user_id, Job.status == JobStatus.PROCESSING)
    ).scalar_one()
    return max(balance - processing, 0)


def take_back(*, session: Session, user_id: uuid.UUID, credits: int, kind: str, ref: str, note: str) -> TakeBack:
    """Take up to `credits` (what `takeable` allows) as a ledger row (kind, ref), inside the
    caller's transaction, and cancel the queued jobs the balance left no longer covers."""
    lock_credits(session, user_id)
    taken = min(credits, takeable(session, user_id))
    if taken > 0 and not apply_ledger_entry(session=session, user_id=user_id, delta=-taken, kind=kind, ref=ref, note=note):
        taken = 0  # (kind, ref) already recorded: it was taken then
    balance = session.execute(select(Credits.balance).where(Credits.user_id == user_id)).scalar() or 0
    active = list(
        session.execute(
            select(Job.id, Job.status)
            .where(Job.user_id == user_id, Job.status.in_(JobStatus.ACTIVE))
            # Processing first (kept: their workers own them), then the oldest queued first.
            .order_by((Job.status == JobStatus.QUEUED).asc(), Job.created_at, Job.id)
        ).all()
    )
    beyond = [job_id for job_id, status in active[max(balance, 0):] if status == JobStatus.QUEUED]
    reason = note.rstrip(".")
    message = (
        f"Canceled before it started: credits were taken back from your account ({reason}), "
        "leaving none for this photo. No credit was charged; buy credits and enhance it again."
    )[:2000]
    canceled = cancel_queued(session, beyond, message=message, event="credits_taken_back", ref=ref)
    return TakeBack(asked=credits, taken=taken, canceled=canceled)


def adjust_balance(*, session: Session, user_id: uuid.UUID, delta: int, reason: str) -> list[uuid.UUID]:
    """An operator's adjustment, committed: a grant, or a take-back of at most `takeable` credits
    (Invalid beyond, changing nothing). Returns the queued jobs the take-back canceled."""
    start_transaction(session)
    try:
        lock_credits(session, user_id)
        balance = session.execute(select(Credits.balance).where(Credits.user_id == user_id)).scalar()
        if balance is None:
            raise NotFound("User not found.")
        ref = f"adj_{uuid.uuid4().hex}"
        canceled: list[uuid.UUID] = []
        if delta >= 0:
            apply_ledger_entry(session=session, user_id=user_id, delta=delta, kind=LedgerKind.ADJUSTMENT, ref=ref, note=reason)
        else:
            can = takeable(session, user_id)
            if -delta > can:
                held = f" ({balance - can} are held by jobs being processed)" if can < balance else ""
                raise Invalid(f"The balance is {balance}; you can take at most {can} credits{held}.")
            canceled = take_back(
                session=session, user_id=user_id, credits=-delta, kind=LedgerKind.ADJUSTMENT, ref=ref, note=reason
            ).canceled
        session.commit()
    except BaseException:
        session.rollback()
        raise
    return canceled


def find_drift(*, session: Session) -> list[Drift]:
    """Every user whose stored balance differs from the sum of their ledger rows (both read in
    one statement, so a concurrent charge moving both is seen on both or neither)."""
    ledger = (
        select(CreditLedger.user_id, func.sum(CreditLedger.delta).label("total")).group_by(CreditLedger.user_id).subquery()
    )
    rows = session.execute(
        select(User.id, User.email, func.coalesce(Credits.balance, 0), func.coalesce(ledger.c.total, 0))
        .outerjoin(Credits, Credits.user_id == User.id)
        .outerjoin(ledger, ledger.c.user_id == User.id)
        .where(func.coalesce(Credits.balance, 0) != func.coalesce(ledger.c.total, 0))
        .order_by(User.email)
    ).all()
    session.commit()
    return [Drift(user_id=row[0], email=row[1], balance=int(row[2]), ledger_sum=int(row[3])) for row in rows]
