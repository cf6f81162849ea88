"""Where external clients are created: one AppContext, built from Settings, passed to everything.

Tests build their own context with local peers swapped in; the app and the worker build the
default one lazily on first use, never at import time.
"""

from __future__ import annotations

import functools
from typing import TYPE_CHECKING, Any

from sqlmodel import Session

from luster_app.config import Settings, get_settings
from luster_app.db import make_engine, new_session

if TYPE_CHECKING:
    from sqlalchemy.engine import Engine

    from luster_app.auth import AuthProvider
    from luster_app.billing import PaymentProvider
    from luster_app.storage import Storage
    from luster_app.engines import ImageEngine
    from luster_app.imaging.budget import CheckLimits


class AppContext:
    """The database and the providers for storage, auth, images and payments."""

    def __init__(self, settings: Settings, *, db: Engine | None = None, **providers: Any) -> None:
        self.settings = settings
        self.db = db if db is not None else make_engine(settings.database_url_or_default)
        # Explicit providers (tests) win over the ones built from settings.
        for name, provider in providers.items():
            setattr(self, name, provider)

    @classmethod
    def for_worker(cls, settings: Settings, **providers: Any) -> AppContext:
        """The worker's context. Its database connections skip the pre-ping round trip (a
        worker opens a session per step, several per job): the worker already retries a step
        whose connection turns out dead (`JobRunner.db`, the claim loop's backoff), and
        SQLAlchemy then replaces every pooled connection older than the failure."""
        return cls(settings, db=make_engine(settings.database_url_or_default, pre_ping=False), **providers)

    def session(self) -> Session:
        return new_session(self.db)

    @functools.cached_property
    def auth(self) -> AuthProvider:
        from luster_app.auth import build_auth

        return build_auth(self.settings, self.db)

    @functools.cached_property
    def payments(self) -> PaymentProvider:
        from luster_app.billing import build_payments

        return build_payments(self.settings, self.db)

    @functools.cached_property
    def storage(self) -> Storage:
        from luster_app.storage import build_storage

        return build_storage(self.settings)

    @functools.cached_property
    def upload_checks(self) -> CheckLimits:
        """This process's bounds on decoding uploads as they complete (shared by all requests)."""
        from luster_app.imaging.budget import CheckLimits

        return CheckLimits.from_settings(self.settings)

    @functools.cached_property
    def image_engine(self) -> ImageEngine:
        from luster_app.engines import build_engine

        return build_engine(self.settings)


@functools.cache
def default_context() -> AppContext:
    """The process-wide context from the environment's settings."""
    return AppContext(get_settings())
