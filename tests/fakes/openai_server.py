"""A local HTTP server that speaks OpenAI's image-edit API, for the official `openai` client.

`POST /v1/images/edits` takes the multipart form the client sends and answers like OpenAI:
`{"created", "data": [{"b64_json"}], "size", "quality", "output_format", "usage"}` with an
image at the requested size, or an OpenAI-shaped error. It checks the size rules of the
models it knows (independently of the app's own table), records every request, and can be
told to fail the next calls (429 with Retry-After, 500, 400 moderation_blocked, ...) or to
answer slowly. The "edit" it makes is visible and deterministic: the picture is warmed.
"""

from __future__ import annotations

import base64
import io
import json
import threading
import time
from collections import deque
from dataclasses import dataclass, field
from email import policy
from email.parser import BytesParser
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import numpy as np
from PIL import Image

FIXED_SIZE_MODELS = {"gpt-image-1.5", "gpt-image-1-mini"}
CUSTOM_SIZE_MODELS = {
    "gpt-image-2", "gpt-image-2-2026-04-21", "gpt-image-2.5-sunburst", "gpt-image-2.5-sunburst-2026-09-08",
    "gpt-image-2.5-flare", "gpt-image-2.5-flare-2026-09-08", "gpt-image-2.6-sunburst", "gpt-image-2.6-flare",
}
STANDARD_SIZES = {"1024x1024", "1536x1024", "1024x1536"}
# The visible edit: red up, blue down, so a test can find it in the full-resolution output.
WARM_SHIFT = np.array([24, 6, -24], dtype=np.int16)


@dataclass
class RecordedEdit:
    """One request as the server received it."""

    headers: dict[str, str]
    fields: dict[str, str]
    image: bytes
    image_filename: str
    image_content_type: str

    @property
    def model(self) -> str:
        return self.fields.get("model", "")

    @property
    def prompt(self) -> str:
        return self.fields.get("prompt", "")

    @property
    def size(self) -> tuple[int, int] | None:
        width, _, height = self.fields.get("size", "").partition("x")
        return (int(width), int(height)) if width.isdigit() and height.isdigit() else None


@dataclass
class Scripted:
    status: int
    body: dict[str, Any]
    headers: dict[str, str] = field(default_factory=dict)
    delay: float = 0.0
    paint: tuple[float, float, float, float] | None = None  # a new object's box, as canvas fractions


def openai_error(
    message: str, *, type_: str = "invalid_request_error", code: str | None = None, param: str | None = None
) -> dict:
    return {"error": {"message": message, "type": type_, "param": param, "code": code}}


class FakeOpenAI:
    """The server; use as a context manager. `url` is the base URL for OPENAI_BASE_URL."""

    def __init__(self) -> None:
        self.requests: list[RecordedEdit] = []
        self._script: deque[Scripted] = deque()
        self._lock = threading.Lock()
        self._stopping = threading.Event()
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), _handler_for(self))
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}/v1"

    def __enter__(self) -> FakeOpenAI:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stopping.set()
        self._server.shutdown()
        self._server.server_close()

    # --- scripting the next answers ---
    def fail_next(self, status: int, body: dict[str, Any], *, headers: dict[str, str] | None = None) -> None:
        """The next request gets this error answer instead of an image."""
        with self._lock:
            self._script.append(Scripted(status, body, headers or {}))

    def rate_limit_next(self, *, retry_after: str = "7") -> None:
        self.fail_next(429, openai_error("Rate limit reached for images.", type_="requests", code="rate_limit_exceeded"),
                       headers={"Retry-After": retry_after})

    def moderate_next(self) -> None:
        self.fail_next(400, openai_error(
            "Your request was rejected by the safety system. If you believe this is an error, contact us.",
            type_="image_generation_user_error", code="moderation_blocked"))

    def server_error_next(self) -> None:
        self.fail_next(500, openai_error("The server had an error while processing your request.", type_="server_error"))

    def answer_slowly_next(self, seconds: float) -> None:
        """The next request gets its image only after `seconds`."""
        with self._lock:
            self._script.append(Scripted(200, {}, delay=seconds))

    def paint_next(self, box: tuple[float, float, float, float]) -> None:
        """The next answer also draws a new object (a four-pane window) into `box` (left, top,
        right, bottom as fractions of the canvas): what a model must not add unasked."""
        with self._lock:
            self._script.append(Scripted(200, {}, paint=box))

    def _next_script(self) -> Scripted | None:
        with self._lock:
            return self._script.popleft() if self._script else None

    # --- the API ---
    def handle_edit(self, headers: dict[str, str], body: bytes) -> tuple[int, dict[str, Any], dict[str, str]]:
        if not headers.get("authorization", "").startswith("Bearer "):
            return 401, openai_error("You didn't provide an API key.", code="invalid_api_key"), {}
        fields, image = _parse_multipart(headers.get("content-type", ""), body)
        if image is None:
            return 400, openai_error("Missing required parameter: 'image'.", param="image"), {}
        recorded = RecordedEdit(headers, fields, image=image[0], image_filename=image[1], image_content_type=image[2])
        with self._lock:
            self.requests.append(recorded)
        scripted = self._next_script()
        if scripted is not None and scripted.delay:
            if self._stopping.wait(scripted.delay):
                return 503, openai_error("shutting down", type_="server_error"), {}
        elif scripted is not None and scripted.paint is None:
            return scripted.status, scripted.body, scripted.headers
        model = recorded.model
        if model not in FIXED_SIZE_MODELS | CUSTOM_SIZE_MODELS:
            message = f"The model `{model}` does not exist or you do not have access to it."
            return 404, openai_error(message, code="model_not_found"), {}
        problem = _size_problem(model, fields.get("size", "auto"))
        if problem:
            return 400, openai_error(problem, code="invalid_value", param="size"), {}
        if "input_fidelity" in fields and model not in {"gpt-image-1.5"}:
            message = f"input_fidelity is not supported for {model}."
            return 400, openai_error(message, code="unsupported_parameter", param="input_fidelity"), {}
        return 200, _edited_response(recorded, scripted.paint if scripted else None), {}


def _size_problem(model: str, size: str) -> str | None:
    if size == "auto":
        return None
    if model in FIXED_SIZE_MODELS:
        return None if size in STANDARD_SIZES else f"Invalid size '{size}'. Supported: {sorted(STANDARD_SIZES)} and 'auto'."
    width, _, height = size.partition("x")
    if not (width.isdigit() and height.isdigit()):
        return f"Invalid size '{size}'."
    w, h = int(width), int(height)
    if w % 16 or h % 16:
        return f"Invalid size '{size}': width and height must be multiples of 16."
    if max(w, h) > 3840 or max(w / h, h / w) > 3 or not 655_360 <= w * h <= 8_294_400:
        return f"Invalid size '{size}': outside the supported resolution range."
    return None


def _paint_window(picture: np.ndarray, box: tuple[float, float, float, float]) -> None:
    """A window drawn over whatever was there: a white frame, dark panes, a cross of mullions."""
    height, width = picture.shape[:2]
    left, top, right, bottom = round(box[0] * width), round(box[1] * height), round(box[2] * width), round(box[3] * height)
    bar = max(2, (right - left) // 12)
    picture[top:bottom, left:right] = (240, 240, 235)
    picture[top + bar:bottom - bar, left + bar:right - bar] = (40, 60, 80)
    middle_x, middle_y = (left + right) // 2, (top + bottom) // 2
    picture[top:bottom, middle_x - bar // 2:middle_x + bar // 2 + 1] = (240, 240, 235)
    picture[middle_y - bar // 2:middle_y + bar // 2 + 1, left:right] = (240, 240, 235)


def _edited_response(recorded: RecordedEdit, paint: tuple[float, float, float, float] | None = None) -> dict[str, Any]:
    source = Image.open(io.BytesIO(recorded.image)).convert("RGB")
    size = recorded.size or (1024, 1024)
    picture = np.asarray(source.resize(size, Image.Resampling.LANCZOS), dtype=np.int16) + WARM_SHIFT
    if paint is not None:
        _paint_window(picture, paint)
    output_format = recorded.fields.get("output_format", "png")
    buffer = io.BytesIO()
    image_format = {"jpeg": "JPEG", "webp": "WEBP"}.get(output_format, "PNG")
    # Fast PNG compression: the bytes are the same picture, and tests run many of them.
    Image.fromarray(np.clip(picture, 0, 255).astype(np.uint8)).save(buffer, image_format, compress_level=1)
    return {
        "created": int(time.time()),
        "data": [{"b64_json": base64.b64encode(buffer.getvalue()).decode("ascii")}],
        "background": "opaque",
        "output_format": output_format,
        "quality": recorded.fields.get("quality", "auto"),
        "size": f"{size[0]}x{size[1]}",
        "usage": {"input_tokens": 300, "input_tokens_details": {"image_tokens": 250, "text_tokens": 50},
                  "output_tokens": 4000, "total_tokens": 4300},
    }


def _parse_multipart(content_type: str, body: bytes) -> tuple[dict[str, str], tuple[bytes, str, str] | None]:
    message = BytesParser(policy=policy.HTTP).parsebytes(b"Content-Type: " + content_type.encode() + b"\r\n\r\n" + body)
    fields: dict[str, str] = {}
    image = None
    for part in message.iter_parts():
        name = part.get_param("name", header="content-disposition")
        payload = part.get_payload(decode=True) or b""
        if name in ("image", "image[]") and image is None:
            image = (payload, part.get_filename() or "", part.get_content_type())
        elif name:
            fields[name] = payload.decode("utf-8")
    return fields, image


def _handler_for(fake: FakeOpenAI) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *args: Any) -> None:  # keep test output quiet
            pass

        def do_POST(self) -> None:  # noqa: N802
            body = self.rfile.read(int(self.headers.get("content-length") or 0))
            if self.path.rstrip("/") != "/v1/images/edits":
                self._send(404, openai_error(f"Invalid URL (POST {self.path})"), {})
                return
            headers = {key.lower(): value for key, value in self.headers.items()}
            self._send(*fake.handle_edit(headers, body))

        def _send(self, status: int, payload: dict[str, Any], headers: dict[str, str]) -> None:
            data = json.dumps(payload).encode()
            try:
                self.send_response(status)
                self.send_header("content-type", "application/json")
                self.send_header("content-length", str(len(data)))
                self.send_header("x-request-id", f"req_fake_{len(fake.requests)}")
                for key, value in headers.items():
                    self.send_header(key, value)
                self.end_headers()
                self.wfile.write(data)
            except (BrokenPipeError, ConnectionResetError):
                pass  # the client gave up (a timeout test)

    return Handler
