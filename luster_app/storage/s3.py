"""The S3-API backend (Cloudflare R2, AWS S3, MinIO): presigned uploads and downloads, never proxied."""

from __future__ import annotations

import threading
from typing import TYPE_CHECKING, Any, BinaryIO
from urllib.parse import urlsplit

import boto3
from botocore.config import Config
from botocore.exceptions import ClientError

from luster_app.storage.base import ObjectInfo, UploadInstructions, attachment_disposition

if TYPE_CHECKING:
    from luster_app.config import Settings

NOT_FOUND_CODES = {"404", "NoSuchKey", "NotFound"}


def default_upload_method(endpoint_url: str) -> str:
    """R2 has no presigned POST (its docs list GET, HEAD, PUT, DELETE): PUT there, POST elsewhere."""
    host = urlsplit(endpoint_url).hostname or ""
    return "put" if host.endswith("r2.cloudflarestorage.com") else "post"


def _is_not_found(error: ClientError) -> bool:
    return str(error.response.get("Error", {}).get("Code")) in NOT_FOUND_CODES


class S3Storage:
    """One private bucket; a boto3 client per thread, built lazily (boto3 clients are not thread-safe to build)."""

    name = "s3"

    def __init__(
        self,
        *,
        bucket: str,
        endpoint_url: str = "",
        region: str = "auto",
        access_key_id: str = "",
        secret_access_key: str = "",
        upload_method: str = "",
    ) -> None:
        self.bucket = bucket
        self.endpoint_url = endpoint_url
        self.region = region
        self._access_key_id = access_key_id
        self._secret_access_key = secret_access_key
        self.upload_method = upload_method or default_upload_method(endpoint_url)
        self._local = threading.local()

    @classmethod
    def from_settings(cls, settings: Settings) -> S3Storage:
        return cls(
            bucket=settings.s3_bucket,
            endpoint_url=settings.s3_endpoint,
            region=settings.s3_region,
            access_key_id=settings.s3_access_key_id,
            secret_access_key=settings.s3_secret_access_key,
            upload_method=settings.s3_upload_method,
        )

    @property
    def client(self) -> Any:
        client = getattr(self._local, "client", None)
        if client is None:
            # Path-style addressing: R2, MinIO and local servers do not resolve bucket subdomains.
            addressing = "path" if self.endpoint_url else "auto"
            client = boto3.session.Session().client(
                "s3",
                endpoint_url=self.endpoint_url or None,
                region_name=self.region or None,
                aws_access_key_id=self._access_key_id or None,
                aws_secret_access_key=self._secret_access_key or None,
                config=Config(signature_version="s3v4", s3={"addressing_style": addressing}, retries={"mode": "standard"}),
            )
            self._local.client = client
        return client

    def put_bytes(self, key: str, data: bytes, *, content_type: str) -> None:
        self.client.put_object(Bucket=self.bucket, Key=key, Body=data, ContentType=content_type)

    def open_read(self, key: str) -> BinaryIO:
        try:
            return self.client.get_object(Bucket=self.bucket, Key=key)["Body"]
        except ClientError as exc:
            if _is_not_found(exc):
                raise FileNotFoundError(key) from exc
            raise

    def get_bytes(self, key: str) -> bytes:
        body = self.open_read(key)
        try:
            return body.read()
        finally:
            body.close()

    def head(self, key: str) -> ObjectInfo | None:
        try:
            answer = self.client.head_object(Bucket=self.bucket, Key=key)
        except ClientError as exc:
            if _is_not_found(exc):
                return None
            raise
        return ObjectInfo(size=int(answer["ContentLength"]), content_type=answer.get("ContentType"))

    def delete(self, key: str) -> None:
        self.client.delete_object(Bucket=self.bucket, Key=key)

    def presign_upload(self, key: str, *, content_type: str, size: int, max_bytes: int, expires_in: int) -> UploadInstructions:
        """A POST whose policy pins key, type and size range; or, on R2, a PUT that signs type and length."""
        if self.upload_method == "put":
            url = self.client.generate_presigned_url(
                "put_object",
                Params={"Bucket": self.bucket, "Key": key, "ContentType": content_type, "ContentLength": size},
                ExpiresIn=expires_in,
            )
            # Browsers set Content-Length from the body themselves (it is a forbidden header).
            return UploadInstructions(method="PUT", url=url, headers={"Content-Type": content_type})
        post = self.client.generate_presigned_post(
            self.bucket,
            key,  # boto3 adds the exact {"key": key} condition
            Fields={"Content-Type": content_type},
            Conditions=[["content-length-range", 1, max_bytes], {"Content-Type": content_type}],
            ExpiresIn=expires_in,
        )
        return UploadInstructions(method="POST", url=post["url"], fields=post["fields"])

    def signed_get_url(self, key: str, *, expires_in: int, download_name: str | None = None) -> str:
        params = {"Bucket": self.bucket, "Key": key}
        if download_name:
            params["ResponseContentDisposition"] = attachment_disposition(download_name)
        return self.client.generate_presigned_url("get_object", Params=params, ExpiresIn=expires_in)
