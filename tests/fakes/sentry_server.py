"""A local HTTP server speaking Sentry's ingestion side: the SDK's envelope endpoint.

`sentry_sdk` posts each event to `/api/<project>/envelope/` of the DSN's host as an envelope
(newline-separated JSON: the envelope header, then an item header and its payload per item),
gzip-compressed. The server keeps every item of type `event`, and the raw bytes of everything
it received, so a test can assert what reached "Sentry" and what never did.
"""

from __future__ import annotations

import gzip
import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

PROJECT_ID = "42"
PUBLIC_KEY = "0123456789abcdef0123456789abcdef"


class FakeSentry:
    def __init__(self) -> None:
        self.events: list[dict[str, Any]] = []
        self.raw: list[bytes] = []
        self._lock = threading.Lock()
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(self))
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def dsn(self) -> str:
        return f"http://{PUBLIC_KEY}@127.0.0.1:{self._server.server_address[1]}/{PROJECT_ID}"

    def start(self) -> FakeSentry:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()

    def receive(self, body: bytes) -> None:
        events = [json.loads(payload) for header, payload in _items(body) if header.get("type") == "event"]
        with self._lock:
            self.raw.append(body)
            self.events.extend(events)

    def wait_for_event(self, matches: Any, timeout: float = 30) -> dict[str, Any]:
        """The first event for which `matches(event)` is true, waiting for the SDK's sender thread."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with self._lock:
                found = [event for event in self.events if matches(event)]
            if found:
                return found[0]
            time.sleep(0.05)
        raise AssertionError(f"no matching event reached the fake Sentry ({len(self.events)} events)")

    def everything_received(self) -> str:
        with self._lock:
            return b"\n".join(self.raw).decode("utf-8", errors="replace")


def _items(body: bytes) -> list[tuple[dict[str, Any], bytes]]:
    """An envelope's items: after the envelope's header line, each item's header line, then its
    payload (`length` bytes when the header says, else up to the next newline)."""
    items = []
    position = body.find(b"\n") + 1
    while 0 < position < len(body):
        line_end = body.find(b"\n", position)
        line_end = len(body) if line_end == -1 else line_end
        if not body[position:line_end].strip():
            position = line_end + 1
            continue
        header = json.loads(body[position:line_end])
        position = line_end + 1
        if "length" in header:
            end = position + header["length"]
        else:
            end = body.find(b"\n", position)
            end = len(body) if end == -1 else end
        items.append((header, body[position:end]))
        position = end + 1
    return items


def _handler(fake: FakeSentry) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:  # noqa: N802
            body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
            if self.headers.get("Content-Encoding") == "gzip":
                body = gzip.decompress(body)
            if self.path.rstrip("/") != f"/api/{PROJECT_ID}/envelope":
                self.send_response(404)
                self.end_headers()
                return
            fake.receive(body)
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.end_headers()
            self.wfile.write(b'{"id": "0"}')

        def log_message(self, format: str, *args: object) -> None:  # noqa: A002
            pass

    return Handler
