"""The embedded backend: a directory in the data dir, with the app's own signed URLs playing S3's role.

Upload and download URLs point at /api/files/{key} (luster_app/api/files.py) and carry an
HMAC over the operation, key, expiry and size limit, made with a secret generated on first run.
An upload URL works once: after an upload through it completes, another is refused.
"""

from __future__ import annotations

import hashlib
import hmac
import mimetypes
import os
import secrets
import time
import uuid
from base64 import urlsafe_b64encode
from collections.abc import AsyncIterable
from pathlib import Path
from typing import TYPE_CHECKING, BinaryIO
from urllib.parse import quote, urlencode

import anyio

from luster_app.storage.base import ObjectInfo, UploadInstructions

if TYPE_CHECKING:
    from luster_app.config import Settings

FILES_PATH = "/api/files"


class ObjectTooLarge(Exception):
    """The upload went past its signed size limit; nothing was kept."""


class InvalidKey(ValueError):
    """A key that could escape the storage directory."""


class UploadLinkUsed(Exception):
    """An upload through this signed URL already completed; nothing of this one was kept."""


def load_or_create_secret(path: Path) -> bytes:
    """The 32-byte secret at `path`, created (mode 0600) on first use; concurrent first runs agree."""
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".{path.name}.{os.getpid()}.{uuid.uuid4().hex}")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "wb") as f:
            f.write(secrets.token_bytes(32))
        try:
            os.link(tmp, path)  # fails if another process won the race; then both use the winner's
        except FileExistsError:
            pass
        finally:
            tmp.unlink()
    return path.read_bytes()


def _temp_name(path: Path) -> Path:
    """Where `path` is written before it is renamed into place: whole or not at all."""
    return path.with_name(f".{path.name}.{uuid.uuid4().hex}.part")


class LocalStorage:
    """Objects as files under `root`; never holds a whole upload in memory."""

    name = "local"

    def __init__(self, *, root: Path, secret_path: Path, base_url: str) -> None:
        self.root = root
        # One empty file per upload link used and not yet expired, named by expiry and key.
        self._used_links = root.with_name(f"{root.name}-used-links")
        self._secret_path = secret_path
        self._secret: bytes | None = None
        self.base_url = base_url.rstrip("/")

    @classmethod
    def from_settings(cls, settings: Settings) -> LocalStorage:
        data_dir = settings.luster_data_dir
        return cls(root=data_dir / "storage", secret_path=data_dir / "storage_url.key", base_url=settings.app_url)

    # --- paths ---

    def path_for(self, key: str) -> Path:
        """The file of `key`; InvalidKey for anything that is not a plain relative key."""
        parts = key.split("/")
        if any(part in ("", ".", "..") or "\\" in part or "\x00" in part for part in parts):
            raise InvalidKey(key)
        return self.root.joinpath(*parts)

    def _temp_path(self, path: Path) -> Path:
        path.parent.mkdir(parents=True, exist_ok=True)
        return _temp_name(path)

    # --- the Storage interface ---

    def put_bytes(self, key: str, data: bytes, *, content_type: str) -> None:
        path = self.path_for(key)
        tmp = _temp_name(path)
        # The folder is made only when it is missing, and the temporary file removed only when it
        # was left behind: a worker stores two objects a job (an output and its thumbnail, in one
        # folder), and each system call more lets another of its threads take the GIL meanwhile.
        try:
            try:
                file = tmp.open("wb")
            except FileNotFoundError:
                path.parent.mkdir(parents=True, exist_ok=True)
                file = tmp.open("wb")
            with file:
                file.write(data)
            os.replace(tmp, path)
        except BaseException:
            tmp.unlink(missing_ok=True)
            raise

    def open_read(self, key: str) -> BinaryIO:
        return self.path_for(key).open("rb")

    def get_bytes(self, key: str) -> bytes:
        return self.path_for(key).read_bytes()

    def head(self, key: str) -> ObjectInfo | None:
        path = self.path_for(key)
        try:
            size = path.stat().st_size
        except FileNotFoundError:
            return None
        return ObjectInfo(size=size, content_type=mimetypes.guess_type(path.name)[0])

    def delete(self, key: str) -> None:
        path = self.path_for(key)
        path.unlink(missing_ok=True)
        # Leave no empty asset/shoot/user folders behind; rmdir refuses a folder still in use.
        for folder in path.parents:
            if folder == self.root or self.root not in folder.parents:
                break
            try:
                folder.rmdir()
            except OSError:
                break

    def presign_upload(self, key: str, *, content_type: str, size: int, max_bytes: int, expires_in: int) -> UploadInstructions:
        """A PUT to the app's own upload endpoint, valid for this key and up to `max_bytes`."""
        self.path_for(key)
        expires = int(time.time()) + expires_in
        query = {"expires": str(expires), "max": str(max_bytes), "sig": self._sign("PUT", key, expires, str(max_bytes))}
        return UploadInstructions(method="PUT", url=self._url(key, query), headers={"Content-Type": content_type})

    def signed_get_url(self, key: str, *, expires_in: int, download_name: str | None = None) -> str:
        self.path_for(key)
        expires = int(time.time()) + expires_in
        query = {"expires": str(expires)}
        if download_name:
            query["name"] = download_name
        query["sig"] = self._sign("GET", key, expires, download_name or "")
        return self._url(key, query)

    # --- what the /api/files endpoints need ---

    def verify_upload(self, key: str, *, expires: int, max_bytes: int, signature: str) -> bool:
        return self._verify("PUT", key, expires, str(max_bytes), signature)

    def verify_download(self, key: str, *, expires: int, download_name: str, signature: str) -> bool:
        return self._verify("GET", key, expires, download_name, signature)

    async def receive(self, key: str, chunks: AsyncIterable[bytes], *, max_bytes: int, link_expires: int | None = None) -> int:
        """Stream `chunks` into `key`; past `max_bytes` stop, keep nothing and raise ObjectTooLarge.

        With `link_expires` (the upload link's expiry), the link is single-use: once an upload
        through it has been stored, another raises UploadLinkUsed and keeps nothing, so the photo
        cannot be replaced after it was checked. An upload that broke off uses nothing up.
        """
        path = self.path_for(key)
        used = None
        if link_expires is not None:
            used = self._used_links / f"{link_expires}-{hashlib.sha256(key.encode()).hexdigest()}"
            if used.exists():
                raise UploadLinkUsed(key)
        tmp = self._temp_path(path)
        written = 0
        try:
            with tmp.open("wb") as file:
                async for chunk in chunks:
                    written += len(chunk)
                    if written > max_bytes:
                        raise ObjectTooLarge(f"the upload is larger than {max_bytes} bytes")
                    await anyio.to_thread.run_sync(file.write, chunk)
            if used is not None:
                self._use_link(used)
            os.replace(tmp, path)
        finally:
            tmp.unlink(missing_ok=True)
        return written

    def _use_link(self, marker: Path) -> None:
        """Record the link as used (atomically: of two concurrent uploads one wins), and forget
        links past their expiry, which their signature refuses anyway."""
        self._used_links.mkdir(parents=True, exist_ok=True)
        now = time.time()
        for old in self._used_links.iterdir():
            expires = old.name.partition("-")[0]
            if expires.isdigit() and int(expires) < now:
                old.unlink(missing_ok=True)
        try:
            os.close(os.open(marker, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))
        except FileExistsError:
            raise UploadLinkUsed(marker.name) from None

    # --- signing ---

    def _url(self, key: str, query: dict[str, str]) -> str:
        return f"{self.base_url}{FILES_PATH}/{quote(key)}?{urlencode(query)}"

    def _sign(self, operation: str, key: str, expires: int, limit: str) -> str:
        if self._secret is None:
            self._secret = load_or_create_secret(self._secret_path)
        message = "\n".join((operation, key, str(expires), limit)).encode()
        return urlsafe_b64encode(hmac.new(self._secret, message, hashlib.sha256).digest()).rstrip(b"=").decode()

    def _verify(self, operation: str, key: str, expires: int, limit: str, signature: str) -> bool:
        if expires < time.time():
            return False
        return hmac.compare_digest(self._sign(operation, key, expires, limit), signature)
