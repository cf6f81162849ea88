"""Closing an account: everything the photographer made is deleted; what accounting needs stays.

Kept, without the email address: the user row (its id, creation date and the time it was
closed), the credit balance and ledger, and the records of card payments (checkout sessions):
a refund or a chargeback can arrive months later and must still find the purchase it reverses,
and bookkeeping law asks for sales records to be kept. Deleted: every shoot, photo, output,
thumbnail and stored object, every job and its timeline, download links, pending sign-in links
and the rate-limit counters that named the address.
"""

from __future__ import annotations

import logging
import uuid

from sqlalchemy import delete, select
from sqlmodel import Session

from luster_app.config import Settings
from luster_app.models import DownloadLink, MagicLink, RateLimitBucket, User, utcnow
from luster_app.services.deletion import remove_everything
from luster_app.services.errors import NotFound
from luster_app.services.jobs import start_transaction
from luster_app.services.storage_cleanup import delete_pending
from luster_app.storage import Storage

log = logging.getLogger(__name__)

CLOSED_EMAIL_DOMAIN = "closed.invalid"  # RFC 2606: never a real mailbox
BUSY = "Photos of yours are being enhanced right now. Close the account once they finish (usually within a few minutes)."
WHAT_GOES = "every shoot, every photo and enhanced version, and every stored file"
WHAT_STAYS = (
    "Luster keeps your credit history and the records of your payments, without your email address, "
    "because refunds, chargebacks and bookkeeping rules need them."
)


def close_account(*, session: Session, storage: Storage, settings: Settings, user_id: uuid.UUID) -> int:
    """Delete everything of the user's and refuse their tokens from now on; returns how many stored
    objects storage refused for now (the worker's sweep retries them). Conflict (409) while a
    photo of theirs is being processed."""
    start_transaction(session)
    try:
        user = session.execute(select(User).where(User.id == user_id, User.closed_at.is_(None))).scalars().first()
        if user is None:
            raise NotFound("Account not found.")
        email = user.email
        deletion_ids = remove_everything(session=session, settings=settings, user_id=user_id, busy=BUSY)
        session.execute(delete(DownloadLink).where(DownloadLink.user_id == user_id))
        session.execute(delete(MagicLink).where(MagicLink.email == email))
        session.execute(delete(RateLimitBucket).where(RateLimitBucket.bucket == f"magic-link:email:{email}"))
        user.email = f"closed-{user.id}@{CLOSED_EMAIL_DOMAIN}"
        user.is_admin = False
        user.closed_at = utcnow()
        session.commit()
    except BaseException:
        session.rollback()
        raise
    log.info("account %s closed", user_id)
    return delete_pending(session=session, storage=storage, ids=deletion_ids)
