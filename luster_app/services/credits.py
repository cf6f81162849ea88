"""The credit ledger: every balance change is a ledger row, and UNIQUE(kind, ref) makes it happen once."""

from __future__ import annotations

import functools
import uuid
from typing import Any

import sqlalchemy as sa
from sqlalchemy import bindparam, func, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.sql.base import Executable
from sqlmodel import Session

from luster_app.metrics import count_credits
from luster_app.models import CreditLedger, Credits, utcnow

LEDGER_COLUMNS = ("user_id", "delta", "kind", "ref", "note", "created_at")


def ledger_entry_postgres(rows: sa.Select[Any]) -> tuple[sa.CTE, sa.CTE]:
    """PostgreSQL: record `rows` (columns LEDGER_COLUMNS, at most one row per user: UPDATE … FROM
    moves a credits row once) in the ledger and move each balance by what was recorded, as two
    CTEs of one statement: `entry` (the rows recorded; a (kind, ref) already there is skipped by
    ON CONFLICT DO NOTHING) and the relative credits UPDATE.

    One statement holds the user's credits row locked for the least time: every finishing job
    of a photographer queues on that row until its transaction commits.
    """
    entry = (
        postgresql.insert(CreditLedger.__table__)
        .from_select(LEDGER_COLUMNS, rows)
        .on_conflict_do_nothing(index_elements=["kind", "ref"])
        .returning(CreditLedger.__table__.c.user_id, CreditLedger.__table__.c.delta)
        .cte("entry")
    )
    credits = Credits.__table__
    # Relative UPDATE: concurrent charges and grants never overwrite each other.
    moved = update(credits).where(credits.c.user_id == entry.c.user_id).values(balance=credits.c.balance + entry.c.delta)
    return entry, moved.cte("moved")


@functools.cache
def _ledger_statements(dialect: str) -> tuple[Executable, ...]:
    """The statements of one ledger entry, built once per dialect; parameters are the
    LEDGER_COLUMNS prefixed `entry_`. PostgreSQL: one statement counting the rows recorded.
    SQLite: INSERT … ON CONFLICT DO NOTHING RETURNING, then (if recorded) the relative UPDATE."""
    ledger = CreditLedger.__table__
    values = {name: bindparam(f"entry_{name}", type_=ledger.c[name].type) for name in LEDGER_COLUMNS}
    if dialect == "postgresql":
        entry, moved = ledger_entry_postgres(select(*(value.label(name) for name, value in values.items())))
        return (select(func.count()).select_from(entry).add_cte(moved),)
    entry = sqlite.insert(ledger).values(values).on_conflict_do_nothing(index_elements=["kind", "ref"]).returning(ledger.c.id)
    credits = Credits.__table__
    move = update(credits).where(credits.c.user_id == values["user_id"]).values(balance=credits.c.balance + values["delta"])
    return entry, move


def apply_ledger_entry(
    *, session: Session, user_id: uuid.UUID, delta: int, kind: str, ref: str, note: str = ""
) -> bool:
    """Record `delta` for (kind, ref) and move the balance, inside the caller's transaction.

    Returns False, changing nothing, when that (kind, ref) was already recorded. A concurrent
    transaction recording the same (kind, ref) makes this one wait on the unique index, then
    see the duplicate; the caller's transaction survives either way.
    """
    row = {"user_id": user_id, "delta": delta, "kind": kind, "ref": ref, "note": note, "created_at": utcnow()}
    params = {f"entry_{name}": value for name, value in row.items()}
    statements = _ledger_statements(session.get_bind().dialect.name)
    if len(statements) == 1:
        recorded = session.execute(statements[0], params).scalar_one() == 1
    else:
        entry, move = statements
        recorded = session.execute(entry, params).first() is not None
        if recorded:
            session.execute(move, params)
    if recorded:
        count_credits(session, kind=kind, delta=delta)
    return recorded


def grant_adjustment(*, session: Session, user_id: uuid.UUID, delta: int, reason: str) -> None:
    """An operator's adjustment (positive or negative), committed."""
    apply_ledger_entry(
        session=session, user_id=user_id, delta=delta, kind="adjustment", ref=f"adj_{uuid.uuid4().hex}", note=reason
    )
    session.commit()
