"""Bracket groups: photos of one shoot, shot at different exposures, that become one output."""

from __future__ import annotations

import uuid

from fastapi import Response
from pydantic import BaseModel, Field

from luster_app.api.deps import Ctx, CurrentUser, DbSession, api_router
from luster_app.imaging.brackets import MAX_FRAMES
from luster_app.services.brackets import ShootBrackets, create_bracket, delete_bracket, list_brackets

router = api_router(tags=["brackets"])


class BracketIn(BaseModel):
    # Bounds checked by the service, so that every count out of 2..9 gets the same 422 message.
    asset_ids: list[uuid.UUID] = Field(max_length=MAX_FRAMES * 4)


class BracketOut(BaseModel):
    id: uuid.UUID
    shoot_id: uuid.UUID
    asset_ids: list[uuid.UUID]


@router.post("/shoots/{shoot_id}/brackets", status_code=201, response_model=BracketOut)
def post_bracket(shoot_id: uuid.UUID, body: BracketIn, user: CurrentUser, session: DbSession) -> BracketOut:
    """Group 2 to 9 ready photos of the shoot as one bracket (one output, one credit). 404 for a
    photo of another shoot or user; 422 for fewer than 2 or more than 9; 409 for one already grouped."""
    bracket = create_bracket(session=session, user_id=user.id, shoot_id=shoot_id, asset_ids=body.asset_ids)
    return BracketOut(id=bracket.id, shoot_id=shoot_id, asset_ids=list(dict.fromkeys(body.asset_ids)))


@router.get("/shoots/{shoot_id}/brackets", response_model=ShootBrackets)
def get_brackets(shoot_id: uuid.UUID, user: CurrentUser, session: DbSession, context: Ctx) -> ShootBrackets:
    """The shoot's bracket groups (with each one's merged photo and enhanced versions), and the
    groups its ungrouped photos' EXIF suggests; 404 for another user's shoot."""
    return list_brackets(session=session, storage=context.storage, settings=context.settings, user_id=user.id, shoot_id=shoot_id)


@router.delete("/brackets/{bracket_id}", status_code=204)
def remove_bracket(bracket_id: uuid.UUID, user: CurrentUser, session: DbSession, context: Ctx) -> Response:
    """Ungroup: the photos are single again (a merged photo with enhanced versions stays as a
    photo of the shoot). 409 while the group is being enhanced; 404 for another user's."""
    delete_bracket(session=session, storage=context.storage, settings=context.settings, user_id=user.id, bracket_id=bracket_id)
    return Response(status_code=204)
