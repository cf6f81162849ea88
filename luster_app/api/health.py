"""Liveness (/api/health: the database answers) and readiness (/api/ready: storage answers too)."""

import logging

from fastapi import HTTPException
from sqlalchemy import text

from luster_app.api.deps import Ctx, api_router
from luster_app.context import AppContext

router = api_router(tags=["health"])
logger = logging.getLogger(__name__)

# A key that never exists: HEAD on it proves the bucket is reachable and the credentials work.
READY_PROBE_KEY = "__ready__"


def _check_database(context: AppContext) -> None:
    try:
        with context.db.connect() as conn:
            conn.execute(text("SELECT 1"))
    except Exception as exc:
        logger.warning("health check: database unavailable: %s: %s", type(exc).__name__, exc)
        raise HTTPException(503, "database unavailable") from exc


def _check_storage(context: AppContext) -> None:
    try:
        context.storage.head(READY_PROBE_KEY)  # None (absent) is the expected answer
    except Exception as exc:
        logger.warning("readiness check: storage unavailable: %s: %s", type(exc).__name__, exc)
        raise HTTPException(503, "storage unavailable") from exc


@router.get("/health")
def health(context: Ctx) -> dict[str, str]:
    """200 when the app is up and its database answers."""
    _check_database(context)
    return {"status": "ok"}


@router.get("/ready")
def ready(context: Ctx) -> dict[str, str]:
    """200 when the database and the storage both answer: the replica can take traffic."""
    _check_database(context)
    _check_storage(context)
    return {"status": "ok", "database": "ok", "storage": "ok"}
