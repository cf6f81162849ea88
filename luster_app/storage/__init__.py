"""Object storage: one interface, an S3-API backend (R2, S3, MinIO) and a local-directory backend."""

from luster_app.storage.base import ObjectInfo, Storage, UploadInstructions

__all__ = ["ObjectInfo", "Storage", "UploadInstructions"]
