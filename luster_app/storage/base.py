"""The storage interface every backend implements; keys are always made by the server (keys.py)."""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass, field
from typing import BinaryIO, Protocol
from urllib.parse import quote


@dataclass(frozen=True)
class UploadInstructions:
    """How the browser sends the bytes: a presigned POST (url + fields) or PUT (url + headers)."""

    method: str  # "POST" or "PUT"
    url: str
    fields: dict[str, str] = field(default_factory=dict)
    headers: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class ObjectInfo:
    size: int
    content_type: str | None


class Storage(Protocol):
    name: str

    def put_bytes(self, key: str, data: bytes, *, content_type: str) -> None:
        """Store `data` at `key`, replacing what was there."""
        ...

    def open_read(self, key: str) -> BinaryIO:
        """A readable stream of the object (FileNotFoundError if absent)."""
        ...

    def get_bytes(self, key: str) -> bytes:
        """The whole object (FileNotFoundError if absent)."""
        ...

    def head(self, key: str) -> ObjectInfo | None:
        """Size and type of the object, or None if it does not exist."""
        ...

    def delete(self, key: str) -> None:
        """Remove the object; absent is fine."""
        ...

    def presign_upload(self, key: str, *, content_type: str, size: int, max_bytes: int, expires_in: int) -> UploadInstructions:
        """Instructions for a browser to upload exactly one object to `key`."""
        ...

    def signed_get_url(self, key: str, *, expires_in: int, download_name: str | None = None) -> str:
        """A short-lived URL to GET the object (after the caller checked ownership)."""
        ...


def read_at_most(stream: BinaryIO, limit: int) -> bytes:
    """Up to `limit + 1` bytes of `stream`, so a caller can tell "too big" without reading it all."""
    chunks: list[bytes] = []
    remaining = limit + 1
    while remaining > 0:
        chunk = stream.read(min(remaining, 1 << 20))
        if not chunk:
            break
        chunks.append(chunk)
        remaining -= len(chunk)
    return b"".join(chunks)


def attachment_disposition(download_name: str) -> str:
    """A Content-Disposition that saves the file as `download_name` (ASCII fallback + RFC 6266 UTF-8)."""
    ascii_name = unicodedata.normalize("NFKD", download_name).encode("ascii", "ignore").decode()
    # Quotes, backslashes and control characters would break out of the quoted-string.
    ascii_name = re.sub(r'[^A-Za-z0-9._ ()+-]', "_", ascii_name).strip() or "download"
    return f"attachment; filename=\"{ascii_name}\"; filename*=UTF-8''{quote(download_name, safe='')}"
