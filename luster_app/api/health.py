"""Liveness with a database check."""

from fastapi import APIRouter, HTTPException
from sqlalchemy import text

from luster_app.api.deps import Ctx

router = APIRouter(tags=["health"])


@router.get("/health")
def health(context: Ctx) -> dict[str, str]:
    """200 when the app is up and its database answers."""
    try:
        with context.db.connect() as conn:
            conn.execute(text("SELECT 1"))
    except Exception as exc:
        raise HTTPException(503, "database unavailable") from exc
    return {"status": "ok"}
