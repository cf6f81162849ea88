"""Alembic environment: one history for SQLite and PostgreSQL; the URL comes from Settings."""

from alembic import context
from sqlalchemy import pool

from luster_app import models  # noqa: F401  (registers every table on the metadata)
from luster_app.config import get_settings
from luster_app.db import make_engine

target_metadata = models.SQLModel.metadata


def _url() -> str:
    return context.config.attributes.get("url") or get_settings().database_url_or_default


def run_migrations_offline() -> None:
    context.configure(url=_url(), target_metadata=target_metadata, render_as_batch=True, literal_binds=True)
    with context.begin_transaction():
        context.run_migrations()


def run_migrations_online() -> None:
    connection = context.config.attributes.get("connection")
    if connection is not None:
        _run(connection)
        return
    engine = make_engine(_url())
    try:
        with engine.connect() as conn:
            _run(conn)
    finally:
        engine.dispose()


def _run(connection) -> None:  # noqa: ANN001
    # Batch mode lets ALTERs run on SQLite, which rebuilds the table instead.
    context.configure(connection=connection, target_metadata=target_metadata, render_as_batch=True, compare_type=True)
    with context.begin_transaction():
        context.run_migrations()


if context.is_offline_mode():
    run_migrations_offline()
else:
    run_migrations_online()
