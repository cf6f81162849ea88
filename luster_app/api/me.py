"""The caller and their credits."""

from fastapi import Request
from pydantic import BaseModel

from luster_app.api.deps import Ctx, CurrentUser, DbSession, api_router
from luster_app.services import auth as auth_service
from luster_app.services.account import WHAT_STAYS, close_account
from luster_app.services.users import credit_summary

router = api_router(tags=["account"])


class CreditsOut(BaseModel):
    balance: int
    reserved: int
    available: int


class MeOut(BaseModel):
    id: str
    email: str
    is_admin: bool
    credits: CreditsOut


@router.get("/me", response_model=MeOut)
def me(user: CurrentUser, session: DbSession) -> MeOut:
    """Who the bearer token belongs to, with balance, reserved and available credits."""
    summary = credit_summary(session=session, user_id=user.id)
    return MeOut(id=str(user.id), email=user.email, is_admin=user.is_admin, credits=CreditsOut(**summary))


class ClosedOut(BaseModel):
    closed: bool
    kept: str  # what Luster keeps, and why


@router.delete("/me", response_model=ClosedOut)
def delete_me(request: Request, user: CurrentUser, session: DbSession, context: Ctx) -> ClosedOut:
    """Close the account: every shoot, photo and stored file is deleted, every session ended, and
    its tokens are refused from now on. The credit ledger and payment records stay, without the
    email, for refunds, chargebacks and bookkeeping. 409 while a photo is being enhanced."""
    close_account(session=session, storage=context.storage, settings=context.settings, user_id=user.id)
    token = request.headers.get("authorization", "").partition(" ")[2]
    auth_service.sign_out(auth=context.auth, access_token=token, everywhere=True)
    return ClosedOut(closed=True, kept=WHAT_STAYS)
