"""Taking credits back (an operator's adjustment, a refund, a dispute) without spending the credits
queued jobs have reserved, and the drift check that compares each balance with its ledger.

The invariant kept: a user's balance covers their queued and processing jobs (each charges one
credit when it succeeds). A take-back never takes the credits of jobs being processed (their
workers will charge them) or held for review (accepting charges them), and cancels, uncharged and saying why, the newest queued jobs the
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
from luster_app.services.users import credit_summary


@dataclass(frozen=True)
class TakeBack:
    """What a take-back did: credits taken (at most those asked) and the queued jobs it canceled."""

    taken: int
    canceled: list[uuid.UUID]


@dataclass(frozen=True)
class Drift:
    """A user whose balance is not the sum of their ledger rows, or whose reserved count (kept
    by the database's triggers) is not the number of their jobs holding a credit."""

    user_id: uuid.UUID
    email: str
    balance: int
    ledger_sum: int
    reserved: int
    reserving_jobs: int


def take_back(
    *, session: Session, user_id: uuid.UUID, credits: int, kind: str, ref: str, note: str, refuse_beyond: bool = False
) -> TakeBack:
    """Take up to `credits` as a ledger row (kind, ref), inside the caller's transaction, and cancel
    the queued jobs the balance left no longer covers. What jobs being processed will charge is
    never taken: with `refuse_beyond` asking for more is Invalid (422), else less is taken."""
    lock_credits(session, user_id)
    # Lock the queued jobs first (PostgreSQL; SQLite's write lock covers all): a worker's claim
    # skips locked rows, so none of them starts between this count and their cancel.
    queued = list(
        session.execute(
            select(Job.id).where(Job.user_id == user_id, Job.status == JobStatus.QUEUED)
            .order_by(Job.created_at, Job.id).with_for_update()
        ).scalars()
    )
    # Jobs being processed charge when they succeed; edits held for review charge if accepted.
    # The reserved counter cannot move while the credits row is locked (a job leaving the
    # reserving statuses waits for the lock), and a job a worker hands back to the queue
    # meanwhile (a retry) stays counted even though it missed the list above.
    summary = credit_summary(session=session, user_id=user_id)
    balance, processing = summary["balance"], summary["reserved"] - len(queued)
    takeable = max(balance - processing, 0)
    if refuse_beyond and credits > takeable:
        held = f" ({balance - takeable} are held by jobs being processed)" if takeable < balance else ""
        raise Invalid(f"The balance is {balance}; you can take at most {takeable} credits{held}.")
    taken = min(credits, takeable)
    if taken > 0 and not apply_ledger_entry(session=session, user_id=user_id, delta=-taken, kind=kind, ref=ref, note=note):
        taken = 0  # (kind, ref) already recorded: it was taken then
    # The oldest queued jobs keep what the balance still covers after the jobs in progress.
    beyond = queued[max(balance - taken - processing, 0):]
    message = (
        f"Canceled before it started: credits were taken back from your account ({note.rstrip('.')}), "
        "leaving none for this photo. No credit was charged; buy credits and enhance it again."
    )[:2000]
    canceled = cancel_queued(session, beyond, message=message, event="credits_taken_back", ref=ref)
    return TakeBack(taken=taken, canceled=canceled)


def adjust_balance(*, session: Session, user_id: uuid.UUID, delta: int, reason: str) -> list[uuid.UUID]:
    """An operator's adjustment, committed: a grant, or a take-back of at most the balance less
    jobs being processed (Invalid beyond, changing nothing). Returns the jobs it canceled."""
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
            canceled = take_back(
                session=session, user_id=user_id, credits=-delta, kind=LedgerKind.ADJUSTMENT, ref=ref, note=reason,
                refuse_beyond=True,
            ).canceled
        session.commit()
    except BaseException:
        session.rollback()
        raise
    return canceled


def find_drift(*, session: Session) -> list[Drift]:
    """Every user whose stored balance differs from the sum of their ledger rows, or whose
    reserved count differs from their jobs holding a credit (each pair read in one statement,
    so a concurrent change moving both is seen on both or neither)."""
    ledger = (
        select(CreditLedger.user_id, func.sum(CreditLedger.delta).label("total")).group_by(CreditLedger.user_id).subquery()
    )
    jobs = (
        select(Job.user_id, func.count().label("total")).where(Job.status.in_(JobStatus.RESERVING))
        .group_by(Job.user_id).subquery()
    )
    balance, ledger_sum = func.coalesce(Credits.balance, 0), func.coalesce(ledger.c.total, 0)
    reserved, reserving_jobs = func.coalesce(Credits.reserved, 0), func.coalesce(jobs.c.total, 0)
    rows = session.execute(
        select(User.id, User.email, balance, ledger_sum, reserved, reserving_jobs)
        .outerjoin(Credits, Credits.user_id == User.id)
        .outerjoin(ledger, ledger.c.user_id == User.id)
        .outerjoin(jobs, jobs.c.user_id == User.id)
        .where((balance != ledger_sum) | (reserved != reserving_jobs))
        .order_by(User.email)
    ).all()
    session.commit()
    return [
        Drift(user_id=row[0], email=row[1], balance=int(row[2]), ledger_sum=int(row[3]), reserved=int(row[4]),
              reserving_jobs=int(row[5]))
        for row in rows
    ]
