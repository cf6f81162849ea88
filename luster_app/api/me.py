"""The caller and their credits."""

from fastapi import APIRouter
from pydantic import BaseModel

from luster_app.api.deps import CurrentUser, DbSession
from luster_app.services.users import credit_summary

router = APIRouter(tags=["account"])


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
