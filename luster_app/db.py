"""Database engine construction: one place that knows SQLite from PostgreSQL."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

from sqlalchemy import event
from sqlalchemy.engine import Connection, Dialect, Engine
from sqlalchemy.sql import Select
from sqlmodel import Session, create_engine

T = TypeVar("T")


def make_engine(url: str, *, pool_size: int = 10, pre_ping: bool = True) -> Engine:
    """An engine for `url`; SQLite gets WAL and a busy timeout so the app and worker can share it.

    `pre_ping` tests each pooled PostgreSQL connection before use (one round trip), so a
    request after a database restart gets a live connection instead of an error.
    """
    if url.startswith("sqlite"):
        engine = create_engine(url, connect_args={"check_same_thread": False, "timeout": 30})

        @event.listens_for(engine, "connect")
        def _sqlite_pragmas(dbapi_connection, _record):  # noqa: ANN001
            # Let SQLAlchemy, not pysqlite, emit BEGIN, so SAVEPOINTs work (SQLAlchemy's recipe).
            dbapi_connection.isolation_level = None
            cursor = dbapi_connection.cursor()
            cursor.execute("PRAGMA journal_mode=WAL")
            cursor.execute("PRAGMA foreign_keys=ON")
            cursor.execute("PRAGMA busy_timeout=30000")
            cursor.close()

        @event.listens_for(engine, "begin")
        def _sqlite_begin(conn):  # noqa: ANN001
            conn.exec_driver_sql("BEGIN")

        return engine
    return create_engine(url, pool_pre_ping=pre_ping, pool_size=pool_size, max_overflow=pool_size)


def is_postgres(engine: Engine | Connection) -> bool:
    return engine.dialect.name == "postgresql"


def new_session(engine: Engine) -> Session:
    """A session whose objects stay readable after commit (services return them to callers)."""
    return Session(engine, expire_on_commit=False)


class HeldConnection:
    """A pooled connection that one thread keeps, in autocommit, for units of work that are one
    statement each on PostgreSQL (a worker's claims, or one job slot's finishes:
    services/job_queue.py). On SQLite, where they are several statements in one transaction,
    each runs in a fresh Session instead.

    Each statement commits by itself. A Session, a pool checkout and the switch to autocommit and
    back around each one cost more CPU than the statement: a worker runs two for every job. After
    a failed unit of work the connection goes back to the pool (it may be the one a database
    restart broke, which the pool then replaces) and the next one takes a fresh connection.
    """

    def __init__(self, engine: Engine) -> None:
        self._engine = engine
        self._connection: Connection | None = None

    def run(self, work: Callable[[Session | Connection], T]) -> T:
        """`work` on the held connection (taken from the pool if none is held); SQLite: in a session."""
        if not is_postgres(self._engine):
            with new_session(self._engine) as session:
                return work(session)
        if self._connection is None:
            self._connection = self._engine.connect().execution_options(isolation_level="AUTOCOMMIT")
        try:
            return work(self._connection)
        except BaseException:
            self.close()
            raise

    def close(self) -> None:
        """Give the connection back to the pool."""
        connection, self._connection = self._connection, None
        if connection is not None:
            connection.close()


class Precompiled:
    """A SELECT compiled once for one dialect, run through the driver with its values converted
    by the statement's types: for a large statement that runs for every job (the worker's finish,
    services/job_queue.py) and returns few columns.

    `Connection.execute` builds a cache key from the whole statement and looks its compiled form
    up on every call, then works out each parameter: for the finish (several CTEs, about 45
    parameters) that cost a worker more CPU than the driver's own work. Here it is done once.
    Each call goes through `exec_driver_sql`, so errors, disconnects and invalidation are handled
    as for any statement; only the conversions the types make (JSON parameters, timestamps in
    UTC) are applied by hand. Its result's layout is worked out on every call, unlike a cached
    statement's: for a wide result, `Connection.execute` costs less.
    """

    def __init__(self, statement: Select[Any], dialect: Dialect) -> None:
        compiled = statement.compile(dialect=dialect)
        self.sql = compiled.string
        literals: dict[str, Any] = {}
        required: set[str] = set()
        self._bind_processors: dict[str, Callable[[Any], Any]] = {}
        for bind, name in compiled.bind_names.items():
            if bind.expanding or bind.literal_execute:
                raise ValueError(f"parameter {name!r}: rendered at execution time, which this does not do")
            if bind.required:
                required.add(name)
            else:
                literals[name] = bind.effective_value
            if (process := bind.type.dialect_impl(dialect).bind_processor(dialect)) is not None:
                self._bind_processors[name] = process
        self._literals, self._required = literals, frozenset(required)
        self._result_processors = [
            column.type.dialect_impl(dialect).result_processor(dialect, None) for column in statement.selected_columns
        ]

    def rows(self, connection: Connection, params: dict[str, Any]) -> list[tuple[Any, ...]]:
        """Run with `params` (every parameter the statement leaves open); the rows it returns."""
        if missing := self._required - params.keys():
            raise ValueError(f"no value for parameter(s) {sorted(missing)}")
        values = self._literals | params
        for name, process in self._bind_processors.items():
            values[name] = process(values[name])
        result = connection.exec_driver_sql(self.sql, values)
        processors = self._result_processors
        if not any(processors):
            return [tuple(row) for row in result]
        return [
            tuple(value if process is None else process(value) for value, process in zip(row, processors, strict=True))
            for row in result
        ]
