"""FastAPI dependencies: the context, a DB session, and the signed-in user."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Annotated

from fastapi import Depends, HTTPException, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from sqlmodel import Session

from luster_app.auth import AuthError
from luster_app.context import AppContext, default_context
from luster_app.logging import bind_log_context
from luster_app.models import User
from luster_app.services.users import ensure_user

_bearer = HTTPBearer(auto_error=False)


async def get_context(request: Request) -> AppContext:
    # Async: a sync dependency costs a hop to the thread pool and back, and this one never waits.
    return request.app.state.context or default_context()


async def get_session(context: Annotated[AppContext, Depends(get_context)]) -> AsyncIterator[Session]:
    # Opened, and closed when it holds no transaction, on the event loop: neither waits, and a
    # sync dependency costs a hop to the thread pool and back at each end.
    session = context.session()
    try:
        yield session
    finally:
        if session.in_transaction():
            await run_in_threadpool(session.close)  # a rollback: a round trip to the database
        else:
            session.close()


def get_current_user(
    context: Annotated[AppContext, Depends(get_context)],
    session: Annotated[Session, Depends(get_session)],
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
) -> User:
    """The caller, from `Authorization: Bearer`; created with zero credits on first sight."""
    if credentials is None or credentials.scheme.lower() != "bearer":
        raise HTTPException(401, "sign in first: missing bearer token", headers={"WWW-Authenticate": "Bearer"})
    try:
        identity = context.auth.verify_access_token(credentials.credentials)
        bind_log_context(user_id=identity.user_id)
        return ensure_user(session=session, user_id=identity.user_id, email=identity.email)
    except AuthError as exc:  # also a closed account's still unexpired token
        raise HTTPException(401, str(exc), headers={"WWW-Authenticate": "Bearer"}) from exc


Ctx = Annotated[AppContext, Depends(get_context)]
DbSession = Annotated[Session, Depends(get_session)]
CurrentUser = Annotated[User, Depends(get_current_user)]
