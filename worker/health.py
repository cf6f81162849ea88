"""The worker's own HTTP listener: `/healthz` (is the claim loop still going round?) and `/metrics`.

A worker whose claim loop hangs (a database connection that never answers, a deadlock) still
looks alive to its process supervisor while it sits on its leases. `/healthz` turns 503 once
the loop has not completed a round for `WORKER_LIVENESS_SECONDS`, so Railway's healthcheck
(or any supervisor) restarts it. The listener runs on its own thread, so it answers even then.
"""

from __future__ import annotations

import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from luster_app.metrics import REGISTRY, token_matches


class Liveness:
    """When the claim loop last completed a round (monotonic clock); starts as "just now"."""

    def __init__(self, limit_seconds: float) -> None:
        self.limit_seconds = limit_seconds
        self._last = time.monotonic()

    def beat(self) -> None:
        self._last = time.monotonic()

    def seconds_since_last_round(self) -> float:
        return time.monotonic() - self._last

    def healthy(self) -> bool:
        return self.seconds_since_last_round() <= self.limit_seconds


class HealthServer:
    """`/healthz` and `/metrics` (behind `token` when set) on `port` (0: a free one), all interfaces."""

    # All interfaces: the platform's healthcheck and the scraper reach it from outside the container.
    def __init__(self, *, port: int, token: str, liveness: Liveness, host: str = "0.0.0.0") -> None:  # noqa: S104
        self._server = ThreadingHTTPServer((host, port), _handler(token, liveness))
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, name="health-server", daemon=True)

    @property
    def port(self) -> int:
        return self._server.server_address[1]

    def start(self) -> HealthServer:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()


def _handler(token: str, liveness: Liveness) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802
            path = self.path.split("?", 1)[0]
            if path == "/healthz":
                since = round(liveness.seconds_since_last_round(), 1)
                healthy = liveness.healthy()
                body = {"status": "ok" if healthy else "stuck", "seconds_since_last_claim_round": since,
                        "limit_seconds": liveness.limit_seconds}
                self._answer(200 if healthy else 503, json.dumps(body).encode(), "application/json")
            elif path == "/metrics":
                if token_matches(token, self.headers.get("Authorization")):
                    self._answer(200, generate_latest(REGISTRY), CONTENT_TYPE_LATEST)
                else:
                    self._answer(401, b'{"detail": "send the metrics token as \'Authorization: Bearer ...\'"}', "application/json")
            else:
                self._answer(404, b'{"detail": "not found: /healthz or /metrics"}', "application/json")

        def _answer(self, status: int, body: bytes, content_type: str) -> None:
            self.send_response(status)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: object) -> None:  # noqa: A002  (a probe every few seconds is not news)
            pass

    return Handler
