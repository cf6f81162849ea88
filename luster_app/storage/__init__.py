"""Object storage: one interface, an S3-API backend (R2, S3, MinIO) and a local-directory backend."""

from __future__ import annotations

from typing import TYPE_CHECKING

from luster_app.storage.base import ObjectInfo, Storage, UploadInstructions

if TYPE_CHECKING:
    from luster_app.config import Settings

__all__ = ["ObjectInfo", "Storage", "UploadInstructions", "build_storage"]


def build_storage(settings: Settings) -> Storage:
    """The S3-API backend when S3_ENDPOINT or S3_BUCKET is set, else the local directory."""
    if settings.uses_s3:
        from luster_app.storage.s3 import S3Storage

        return S3Storage.from_settings(settings)
    from luster_app.storage.local import LocalStorage

    return LocalStorage.from_settings(settings)
