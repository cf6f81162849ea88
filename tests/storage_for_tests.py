"""TEMPORARY: a directory Storage until the uploads branch's LocalStorage lands on main."""

from __future__ import annotations

from pathlib import Path

from luster_app.storage.base import ObjectInfo


class DirectoryStorage:
    name = "local"

    def __init__(self, root: Path) -> None:
        self.root = Path(root)

    def _path(self, key: str) -> Path:
        return self.root.joinpath(*key.split("/"))

    def put_bytes(self, key, data, *, content_type):
        path = self._path(key)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)

    def open_read(self, key):
        return self._path(key).open("rb")

    def get_bytes(self, key):
        return self._path(key).read_bytes()

    def head(self, key):
        path = self._path(key)
        return ObjectInfo(size=path.stat().st_size, content_type=None) if path.exists() else None

    def delete(self, key):
        self._path(key).unlink(missing_ok=True)

    def presign_upload(self, *args, **kwargs):
        raise AssertionError("not used")

    def signed_get_url(self, key, *, expires_in, download_name=None):
        return f"http://testserver/files/{key}?expires={expires_in}"
