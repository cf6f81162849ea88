"""`Idempotency-Key` for requests that create and reserve: the same key from the same user within
24 hours gets the first answer again and creates nothing; the same key on another request is 422.

Only a request that created something is remembered: a refused one created nothing, so trying
it again with the same key (after buying credits, say) is safe and does what it says.
"""

from __future__ import annotations

import hashlib
import json
import uuid
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from sqlalchemy import delete
from sqlmodel import Session

from luster_app.models import IdempotencyKey, utcnow
from luster_app.services.errors import Invalid

KEY_LIFETIME = timedelta(hours=24)
MAX_KEY_LENGTH = 255


@dataclass(frozen=True)
class IdempotentRequest:
    """A request's key and what it asked for (its endpoint and body, hashed)."""

    key: str
    fingerprint: str

    @classmethod
    def of(cls, key: str | None, *, scope: str, body: dict[str, Any]) -> IdempotentRequest | None:
        """None without a key; Invalid (422) for a key no client would send."""
        if key is None:
            return None
        if not key.strip() or len(key) > MAX_KEY_LENGTH or not key.isprintable():
            raise Invalid(f"An Idempotency-Key is 1 to {MAX_KEY_LENGTH} printable characters; a UUID is a good one.")
        canonical = json.dumps({"scope": scope, "body": body}, sort_keys=True, default=str)
        return cls(key=key, fingerprint=hashlib.sha256(canonical.encode()).hexdigest())


def first_answer(*, session: Session, user_id: uuid.UUID, request: IdempotentRequest) -> IdempotencyKey | None:
    """The answer already given to this key within its lifetime, inside the caller's transaction;
    Invalid (422) if the key was used for a different request."""
    row = session.get(IdempotencyKey, (user_id, request.key), populate_existing=True)
    if row is None or row.created_at < utcnow() - KEY_LIFETIME:
        return None
    if row.fingerprint != request.fingerprint:
        raise Invalid(
            "This Idempotency-Key was already used for a different request; send a new key for a new request."
        )
    return row


def remember_answer(
    *, session: Session, user_id: uuid.UUID, request: IdempotentRequest, status_code: int, response: dict[str, Any]
) -> None:
    """Store the answer with the work it describes, inside the caller's transaction (the caller
    holds the user's credits lock, so no concurrent request of this user is between the check
    and here; the primary key refuses one anyway). The user's expired keys go at the same time."""
    session.execute(
        delete(IdempotencyKey).where(IdempotencyKey.user_id == user_id, IdempotencyKey.created_at < utcnow() - KEY_LIFETIME)
    )
    session.add(IdempotencyKey(user_id=user_id, key=request.key, fingerprint=request.fingerprint,
                               status_code=status_code, response=response))
    session.flush()
