"""FastAPI dependencies: the context, a DB session, and the signed-in user."""

from __future__ import annotations

import asyncio
import functools
import inspect
from collections.abc import AsyncIterator, Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Annotated, Any

from fastapi import APIRouter, Depends, HTTPException, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.routing import APIRoute
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
            # A rollback: a round trip to the database, on a thread of its own pool. Were it to
            # wait for a request thread, and every request thread wait for a connection, the
            # connection would never come back (tests/test_api_connections.py).
            # Shielded: a cancelled request still gives its connection back.
            await asyncio.shield(asyncio.get_running_loop().run_in_executor(_session_closers(), session.close))
        else:
            session.close()


@functools.cache
def _session_closers() -> ThreadPoolExecutor:
    """Threads that only end requests' sessions: they never wait for a pooled connection."""
    return ThreadPoolExecutor(max_workers=4, thread_name_prefix="session-close")


@dataclass
class Caller:
    """The bearer token a request came with, not yet checked: `user()` checks it and finds the user
    on a sync endpoint's own thread, in the endpoint's transaction (endpoints taking `UncheckedCaller`).

    The endpoint's body and headers are validated before it runs, so a request with a refused
    token and a malformed body is 422 there, where `CurrentUser` answers 401 first."""

    context: AppContext
    token: str = field(repr=False)
    checked: bool = False

    def user(self, session: Session) -> User:
        """The caller, created with zero credits on first sight; 401 for a token refused. Its read
        stays open: the endpoint's first write carries on in the same transaction."""
        try:
            # Off the event loop: a provider's signing keys may have to be fetched.
            identity = self.context.auth.verify_access_token(self.token)
            bind_log_context(user_id=identity.user_id)
            user = ensure_user(session=session, user_id=identity.user_id, email=identity.email)
        except AuthError as exc:  # also a closed account's still unexpired token
            raise HTTPException(401, str(exc), headers={"WWW-Authenticate": "Bearer"}) from exc
        self.checked = True
        return user


async def get_caller(
    context: Annotated[AppContext, Depends(get_context)],
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
) -> Caller:
    # Async: it only reads a header, and a sync dependency costs a hop to the thread pool and back.
    if credentials is None or credentials.scheme.lower() != "bearer":
        raise HTTPException(401, "sign in first: missing bearer token", headers={"WWW-Authenticate": "Bearer"})
    return Caller(context, credentials.credentials)


def get_current_user(
    caller: Annotated[Caller, Depends(get_caller)], session: Annotated[Session, Depends(get_session)]
) -> User:
    """The caller, from `Authorization: Bearer`; created with zero credits on first sight."""
    user = caller.user(session)
    # The read ends here, and its connection goes back to the pool: the endpoint runs on another
    # thread-pool thread, and a request that kept a connection while it waited for one could leave
    # every thread waiting for a connection and every connection waiting for a thread
    # (tests/test_api_connections.py).
    session.commit()
    return user


class ThreadedEndpointRoute(APIRoute):
    """A route whose sync endpoint runs on one thread-pool thread and ends its session's open read
    there; FastAPI then checks the response on the event loop.

    FastAPI would run a sync endpoint on one thread and check its response on another: a hop more
    per request, and a read left open until then holds its pooled connection while the request
    waits for a thread (tests/test_api_connections.py). Services commit their writes themselves;
    what is still open here is a read, and committing it keeps the objects it loaded (a rollback
    would expire them)."""

    def __init__(self, path: str, endpoint: Callable[..., Any], **options: Any) -> None:
        # Generator endpoints stream after they return: FastAPI runs those, like async ones, as they are.
        kept = (inspect.iscoroutinefunction, inspect.isgeneratorfunction, inspect.isasyncgenfunction)
        if not any(is_kind(endpoint) for is_kind in kept):
            endpoint = _on_one_thread(endpoint)
        super().__init__(path, endpoint, **options)


def _on_one_thread(endpoint: Callable[..., Any]) -> Callable[..., Any]:
    def ending_its_read(**arguments: Any) -> Any:
        result = endpoint(**arguments)
        for value in arguments.values():
            if isinstance(value, Caller) and not value.checked:
                # A mistake of ours, never a caller's: the authorization tests call every route.
                raise RuntimeError(f"{endpoint.__name__} took an UncheckedCaller and never checked it")
            if isinstance(value, Session) and value.in_transaction():
                value.commit()
        return result

    @functools.wraps(endpoint)  # FastAPI reads the parameters and return type through __wrapped__
    async def on_one_thread(**arguments: Any) -> Any:
        return await run_in_threadpool(ending_its_read, **arguments)

    return on_one_thread


def api_router(**options: Any) -> APIRouter:
    """An APIRouter of `ThreadedEndpointRoute`s: every router of the API is one."""
    return APIRouter(route_class=ThreadedEndpointRoute, **options)


Ctx = Annotated[AppContext, Depends(get_context)]
DbSession = Annotated[Session, Depends(get_session)]
CurrentUser = Annotated[User, Depends(get_current_user)]
# The hottest endpoints (sync ones only) take the caller and check it on their own thread,
# `caller.user(session)`: a thread-pool hop, a pool checkout and a commit fewer than `CurrentUser`.
UncheckedCaller = Annotated[Caller, Depends(get_caller)]
