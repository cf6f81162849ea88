"""Sign-in over the API: ask for a magic link, confirm it, refresh and end a session."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request, Response
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from pydantic import BaseModel, Field

from luster_app.api.deps import Ctx, DbSession, api_router
from luster_app.services import auth as auth_service
from luster_app.services.auth import SignedIn

router = api_router(prefix="/auth", tags=["auth"])
_bearer = HTTPBearer(auto_error=False)

CHECK_YOUR_EMAIL = "Check your email: if that address can sign in, a sign-in link is on its way."


class MagicLinkIn(BaseModel):
    email: str = Field(max_length=320)
    next: str | None = Field(default=None, max_length=500, description="path to land on after sign-in")


class MagicLinkOut(BaseModel):
    detail: str


class ConfirmIn(BaseModel):
    token: str | None = Field(default=None, max_length=512, description="local link: the `token` query parameter")
    token_hash: str | None = Field(default=None, max_length=512, description="Supabase link: `token_hash`")
    type: str = Field(default="magiclink", max_length=32)


class RefreshIn(BaseModel):
    refresh_token: str = Field(max_length=4096)


class UserOut(BaseModel):
    id: str
    email: str


class SessionOut(BaseModel):
    access_token: str
    refresh_token: str
    token_type: str = "bearer"
    expires_in: int
    user: UserOut
    next: str | None = None


def client_address(request: Request, *, trusted_proxy_hops: int) -> str:
    """The caller's IP: X-Forwarded-For only through the configured trusted proxies (as Reflex does)."""
    address = request.client.host if request.client else ""
    if trusted_proxy_hops:
        forwarded = [ip.strip() for ip in request.headers.get("x-forwarded-for", "").split(",") if ip.strip()]
        if len(forwarded) >= trusted_proxy_hops:
            address = forwarded[-trusted_proxy_hops]
    return address


def _session_out(signed_in: SignedIn) -> SessionOut:
    tokens = signed_in.tokens
    assert tokens is not None  # confirm and refresh always return tokens
    return SessionOut(
        access_token=tokens.access_token,
        refresh_token=tokens.refresh_token,
        expires_in=tokens.expires_in,
        user=UserOut(id=str(signed_in.user.id), email=signed_in.user.email),
        next=tokens.next_path,
    )


@router.post("/magic-link", status_code=202, response_model=MagicLinkOut)
def magic_link(body: MagicLinkIn, request: Request, context: Ctx, session: DbSession) -> MagicLinkOut:
    """Email a one-time sign-in link; the same answer whether or not the address has an account."""
    auth_service.request_magic_link(
        session=session,
        auth=context.auth,
        settings=context.settings,
        email=body.email,
        client_address=client_address(request, trusted_proxy_hops=context.settings.trusted_proxy_hops),
        next_path=body.next,
    )
    return MagicLinkOut(detail=CHECK_YOUR_EMAIL)


@router.post("/confirm", response_model=SessionOut)
def confirm(body: ConfirmIn, context: Ctx, session: DbSession) -> SessionOut:
    """Exchange a link's token for access and refresh tokens; 401 when invalid, expired or used."""
    signed_in = auth_service.confirm_magic_link(
        session=session, auth=context.auth, token=body.token_hash or body.token or "", link_type=body.type
    )
    return _session_out(signed_in)


@router.post("/refresh", response_model=SessionOut)
def refresh(body: RefreshIn, context: Ctx, session: DbSession) -> SessionOut:
    """New tokens for a refresh token; 401 when the session has ended."""
    return _session_out(auth_service.refresh_session(session=session, auth=context.auth, refresh_token=body.refresh_token))


@router.post("/logout", status_code=204)
def logout(
    context: Ctx, credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)]
) -> Response:
    """End the caller's session at the provider (Supabase revokes its refresh tokens); always 204."""
    if credentials is not None:
        auth_service.sign_out(auth=context.auth, access_token=credentials.credentials)
    return Response(status_code=204)
