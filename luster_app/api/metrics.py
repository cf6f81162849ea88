"""Prometheus: `/metrics` (at the root, as scrapers expect) and the middleware that counts HTTP answers."""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator, Mapping

from fastapi import HTTPException, Request, Response
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from luster_app.api.deps import Ctx, api_router
from luster_app.context import AppContext
from luster_app.metrics import HTTP_REQUESTS, HTTP_SECONDS, REGISTRY, token_matches
from luster_app.services.queue_health import queue_depth

router = api_router(tags=["metrics"])
log = logging.getLogger(__name__)

# No route matched (a 404 of the bare API); a real path would give every scanner's guess its own series.
UNMATCHED = "(unmatched)"


class MetricsMiddleware:
    """Counts and times each HTTP answer by its route's template (`/api/jobs/{job_id}`), never the raw path.

    The router leaves the matched route in the scope, but a route of an included router keeps
    the path it was declared with (`/jobs/{job_id}`), so `templates` gives the full template
    of those (id of the route object → template); any other route (a mount, such as the Reflex backend)
    is labelled by its own path.
    """

    def __init__(self, app: ASGIApp, templates: Mapping[int, str]) -> None:
        self.app = app
        self.templates = templates

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        status = 500  # until the app answers: an exception escaping the app is a 500

        async def send_recording_status(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        started = time.perf_counter()
        try:
            await self.app(scope, receive, send_recording_status)
        finally:
            matched = scope.get("route")
            route = self.templates.get(id(matched)) or getattr(matched, "path", None)
            route = UNMATCHED if route is None else route or "/"
            HTTP_REQUESTS.labels(scope["method"], route, str(status)).inc()
            HTTP_SECONDS.labels(scope["method"], route).observe(time.perf_counter() - started)


class QueueCollector(Collector):
    """The queue as the database has it at scrape time."""

    def __init__(self, context: AppContext) -> None:
        self.context = context

    def collect(self) -> Iterator[GaugeMetricFamily]:
        up = GaugeMetricFamily("luster_queue_up", "1 when the queue figures below could be read from the database")
        try:
            with self.context.session() as session:
                depth = queue_depth(session=session)
        except Exception:  # noqa: BLE001  (the process metrics are still worth a scrape)
            log.warning("metrics: could not read the queue from the database", exc_info=True)
            up.add_metric([], 0)
            yield up
            return
        up.add_metric([], 1)
        yield up
        jobs = GaugeMetricFamily(
            "luster_queue_jobs", "Active jobs by state: due (waiting), processing, stale (lease expired)", labels=["state"]
        )
        for state in ("due", "processing", "stale"):
            jobs.add_metric([state], getattr(depth, state))
        yield jobs
        yield GaugeMetricFamily(
            "luster_queue_oldest_due_age_seconds", "How long the longest-waiting due job has waited (0: none due)",
            value=depth.oldest_due_age_seconds,
        )
        yield GaugeMetricFamily(
            "luster_credits_negative_balances", "Photographers whose credit balance is below zero", value=depth.negative_balances
        )


def exposition(*registries: CollectorRegistry) -> bytes:
    """The text format of several registries (distinct metric names), one after another."""
    return b"".join(generate_latest(registry) for registry in registries)


def require_metrics_token(expected: str, authorization: str | None) -> None:
    if not token_matches(expected, authorization):
        raise HTTPException(401, "send the metrics token as 'Authorization: Bearer …'", headers={"WWW-Authenticate": "Bearer"})


@router.get("/metrics", include_in_schema=False)
def metrics(request: Request, context: Ctx) -> Response:
    """Prometheus text format: this process's counters and the queue read from the database."""
    require_metrics_token(context.settings.metrics_token, request.headers.get("authorization"))
    queue = CollectorRegistry(auto_describe=False)
    queue.register(QueueCollector(context))
    return Response(exposition(REGISTRY, queue), media_type=CONTENT_TYPE_LATEST)
