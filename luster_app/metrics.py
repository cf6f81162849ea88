"""Prometheus metrics of the app and the worker, on one registry this module owns.

One module-level registry, not prometheus_client's global one: tests build many apps and
workers in one process, and defining each metric once here (never per app) avoids duplicate
registrations while a scrape still shows only Luster's metrics. Counters only ever grow, so
tests compare a scrape before and after. Figures read from the database (queue depth, the
oldest due job's age) are not kept here: each web scrape computes them (`QueueCollector`).

Counters that follow a database change are recorded once its transaction commits
(`after_commit`), so a rolled-back grant or charge never counts.
"""

from __future__ import annotations

import hmac
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram
from sqlalchemy import event
from sqlalchemy.orm import Session

REGISTRY = CollectorRegistry(auto_describe=True)

# Seconds: API answers are milliseconds, engine calls and jobs up to minutes.
_FAST = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)
_SLOW = (0.1, 0.5, 1.0, 2.0, 5.0, 10.0, 20.0, 30.0, 60.0, 120.0, 300.0, 600.0)

HTTP_REQUESTS = Counter(
    "luster_http_requests", "HTTP answers by method, route template and status", ["method", "route", "status"],
    registry=REGISTRY,
)
HTTP_SECONDS = Histogram(
    "luster_http_request_duration_seconds", "Time to answer, by method and route template", ["method", "route"],
    buckets=_FAST, registry=REGISTRY,
)
JOBS_CREATED = Counter("luster_jobs_created", "Jobs queued, by preset and engine", ["preset", "engine"], registry=REGISTRY)
JOBS_FINISHED = Counter(
    "luster_jobs_finished", "Jobs settled for good, by preset, engine and outcome (succeeded, failed)",
    ["preset", "engine", "outcome"], registry=REGISTRY,
)
JOB_SECONDS = Histogram(
    "luster_job_attempt_duration_seconds",
    "One attempt from claim to settled, by preset, engine and outcome (succeeded, failed, retried, lost)",
    ["preset", "engine", "outcome"], buckets=_SLOW, registry=REGISTRY,
)
ENGINE_SECONDS = Histogram(
    "luster_engine_call_duration_seconds", "Image engine calls, by engine, preset and outcome (ok, error)",
    ["engine", "preset", "outcome"], buckets=_SLOW, registry=REGISTRY,
)
ENGINE_ERRORS = Counter(
    "luster_engine_errors", "Engine calls that failed, by engine and error code", ["engine", "code"], registry=REGISTRY
)
CREDITS_GRANTED = Counter(
    "luster_credits_granted", "Credits added to balances, by ledger kind (purchase, adjustment, refund_failed, dispute_won)",
    ["kind"], registry=REGISTRY,
)
CREDITS_CHARGED = Counter("luster_credits_charged", "Credits charged for finished photos", registry=REGISTRY)
CREDITS_TAKEN_BACK = Counter(
    "luster_credits_taken_back", "Credits removed other than by jobs, by ledger kind (refund, dispute, adjustment)",
    ["kind"], registry=REGISTRY,
)
STRIPE_EVENTS = Counter(
    "luster_stripe_events", "Stripe webhook deliveries, by event type and outcome (handled, duplicate, ignored, failed, rejected)",
    ["type", "outcome"], registry=REGISTRY,
)
UPLOADS_COMPLETED = Counter("luster_uploads_completed", "Uploads verified and ready", registry=REGISTRY)
UPLOADS_REJECTED = Counter("luster_uploads_rejected", "Uploads rejected, by reason", ["reason"], registry=REGISTRY)
WORKER_SLOTS = Gauge("luster_worker_slots", "Job slots of a worker process", ["worker"], registry=REGISTRY)
WORKER_SLOTS_IN_USE = Gauge("luster_worker_slots_in_use", "Job slots running a job", ["worker"], registry=REGISTRY)
WORKER_LAST_CLAIM = Gauge(
    "luster_worker_last_claim_timestamp_seconds", "Unix time of the worker's last successful claim round", ["worker"],
    registry=REGISTRY,
)


def token_matches(expected: str, authorization: str | None) -> bool:
    """Whether an Authorization header carries `expected` as its bearer token (always True when
    no token is configured); compared in constant time."""
    if not expected:
        return True
    scheme, _, token = (authorization or "").partition(" ")
    return scheme.lower() == "bearer" and hmac.compare_digest(token.strip().encode(), expected.encode())


# --- recorded once a transaction commits ---

_PENDING = "luster_metrics_pending"


def _flush(session: Session) -> None:
    for record in session.info.pop(_PENDING, ()):
        record()


def _drop(session: Session) -> None:
    session.info.pop(_PENDING, None)


def after_commit(session: Session, record: Callable[[], None]) -> None:
    """Run `record` when the session's transaction commits; forget it if it rolls back."""
    if not session.info.get("luster_metrics_listening"):
        event.listen(session, "after_commit", _flush)
        event.listen(session, "after_rollback", _drop)
        session.info["luster_metrics_listening"] = True
    session.info.setdefault(_PENDING, []).append(record)


def count_credits(session: Session, *, kind: str, delta: int) -> None:
    """A ledger entry of `delta` credits, counted once its transaction commits."""
    if delta:
        counter = _credits_counter(kind, delta)
        after_commit(session, lambda: counter.inc(abs(delta)))


def count_committed_credits(*, kind: str, delta: int) -> None:
    """A ledger entry of `delta` credits that is already committed (a statement run in
    autocommit, outside any session), counted now."""
    if delta:
        _credits_counter(kind, delta).inc(abs(delta))


def _credits_counter(kind: str, delta: int) -> Any:
    if delta > 0:
        return CREDITS_GRANTED.labels(kind)
    if kind == "job":
        return CREDITS_CHARGED
    return CREDITS_TAKEN_BACK.labels(kind)


@contextmanager
def engine_call(engine: str, preset: str) -> Iterator[None]:
    """Time one engine call; an EngineError (or any failure) counts as an engine error by code."""
    started = time.perf_counter()
    outcome = "error"
    try:
        yield
        outcome = "ok"
    except Exception as exc:
        ENGINE_ERRORS.labels(engine, getattr(exc, "code", "internal_error")).inc()
        raise
    finally:
        ENGINE_SECONDS.labels(engine, preset, outcome).observe(time.perf_counter() - started)
