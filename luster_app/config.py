"""The one Settings class, read from the environment and `.env`, shared by app, worker and CLI."""

from __future__ import annotations

import functools
from pathlib import Path
from typing import Literal

from pydantic import Field, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

PLACEHOLDER_SECRETS = {"", "changeme", "change-me", "secret", "xxx", "todo", "placeholder"}


class Settings(BaseSettings):
    """Every setting of Luster; unset production settings select the embedded providers."""

    model_config = SettingsConfigDict(env_file=".env", extra="ignore", case_sensitive=False)

    # --- Luster itself ---
    luster_env: Literal["development", "test", "production"] = "development"
    luster_data_dir: Path = Path("./data")
    port: int = 8000
    app_url: str = ""
    upload_max_bytes: int = 10 * 1024 * 1024
    # Camera RAW files (DNG, CR2, CR3, NEF, ARW, RAF, ORF, RW2) are larger: their own limit.
    raw_max_bytes: int = 120 * 1024 * 1024
    max_image_pixels: int = 100_000_000
    log_level: str = "INFO"
    # Reverse proxies in front of the app (Railway, a load balancer): X-Forwarded-For is trusted
    # only through this many hops, for rate limits per client address. 0 ignores the header.
    trusted_proxy_hops: int = 0

    # --- database ---
    database_url: str = ""

    # --- storage (S3 API: Cloudflare R2, AWS S3, MinIO) ---
    s3_endpoint: str = ""
    s3_region: str = "auto"
    s3_bucket: str = ""
    s3_access_key_id: str = ""
    s3_secret_access_key: str = ""
    # "post" (presigned POST with a content-length-range) or "put" (R2); empty: from the endpoint.
    s3_upload_method: Literal["", "post", "put"] = ""
    signed_url_ttl_seconds: int = 900
    # A photo still `pending` this long after its upload was signed is finished from what reached
    # storage (the phone's tab closed before it reported back) or rejected with a reason.
    upload_abandon_seconds: int = 3600
    # Checking an upload decodes it in the web process: at most this many checks at once (0: one
    # per core) and this many megapixels decoded at once. A `complete` waits its turn for up to
    # `upload_check_queue_seconds` without holding a thread (and a started check as long for its
    # pixels); a request thread waits `upload_check_wait_seconds` for a slot. Past either: 503
    # with Retry-After (the photo stays pending).
    upload_check_slots: int = 0
    upload_check_megapixels: int = 300
    upload_check_wait_seconds: float = 3.0
    upload_check_queue_seconds: float = 30.0


    # Originals (which may carry GPS) older than this many days are deleted with their outputs by
    # the worker's sweep; unset or 0: kept until the photographer deletes them.
    original_retention_days: int = Field(default=0, ge=0)

    # --- auth ---
    supabase_url: str = ""
    supabase_anon_key: str = ""
    supabase_jwks_url: str = ""
    supabase_jwt_secret: str = ""  # legacy HS256; used only when explicitly set
    smtp_url: str = ""
    smtp_from: str = "Luster <no-reply@localhost>"
    session_ttl_seconds: int = 7 * 24 * 3600
    refresh_ttl_seconds: int = 30 * 24 * 3600  # local provider: how long a signed-in browser stays signed in
    # Sign-in links asked for per 15 minutes, per email address and per client address.
    magic_link_limit_per_email: int = 5
    magic_link_limit_per_address: int = 20

    # --- image engine ---
    openai_api_key: str = ""
    openai_base_url: str = ""
    # The editing-precision model of the current generation (gpt-image-1 was shut down on
    # 2026-10-23); sizes, qualities and input_fidelity per model: engines/openai_models.py.
    openai_image_model: str = "gpt-image-2.5-sunburst"
    openai_image_quality: str = ""  # empty: the model's default in that table ("high")
    openai_timeout_seconds: float = 120.0

    # --- payments ---
    stripe_secret_key: str = ""
    stripe_webhook_secret: str = ""
    stripe_api_base: str = ""
    stripe_price_ids: dict[str, str] = Field(default_factory=dict)
    checkouts_per_hour_per_user: int = 20  # each opens a Checkout Session at Stripe

    # --- worker ---
    worker_concurrency: int = 4
    job_lease_seconds: int = 300
    job_max_attempts: int = 4
    jobs_per_minute_per_user: int = 120
    # Honest edits: an AI edit that redraws more than this share of the photo outside the
    # preset's region, or any one area larger than the second, waits for its owner's review.
    review_outside_share: float = 0.01
    review_area_share: float = 0.003
    job_retry_base_seconds: float = 10.0  # first retry's wait; doubles per attempt, with jitter
    job_retry_max_seconds: float = 600.0
    worker_poll_seconds: float = 1.0  # how often an idle worker looks for due jobs
    worker_upload_sweep_seconds: float = 300.0  # how often a worker settles abandoned uploads
    worker_grace_seconds: float = 25.0  # on SIGTERM, how long in-flight jobs may take to finish
    # Each worker process says it is alive this often (a thread of its own, whatever its jobs are
    # doing); another worker takes over the jobs of one not seen for WORKER_DEAD_AFTER_SECONDS,
    # long before their lease runs out. A slow engine call keeps its job: its worker still beats.
    worker_heartbeat_seconds: float = 5.0
    worker_dead_after_seconds: float = 20.0
    worker_cpu_slots: int = 2  # decode/encode steps at once per process (0: one per core)
    # Megapixels of photos one worker process holds decoded at once (photo and output: about
    # 6 MB per megapixel), so memory stays flat however high the concurrency.
    worker_image_budget_megapixels: int = 150

    # --- scale-out ---
    redis_url: str = ""

    @field_validator("original_retention_days", mode="before")
    @classmethod
    def _empty_is_unset(cls, value: object) -> object:
        return 0 if isinstance(value, str) and not value.strip() else value

    # --- observability ---
    # Bearer token a Prometheus scraper sends to /metrics (web and worker); empty: /metrics is open.
    metrics_token: str = ""
    # Unhandled errors of the app and the worker go to Sentry (scrubbed of secrets); empty: off.
    sentry_dsn: str = ""
    # The worker's /healthz and /metrics listener (0: none). Railway health-checks the worker here.
    worker_metrics_port: int = 0
    # /healthz answers 503 once the claim loop has not completed a round for this long (a hung worker).
    worker_liveness_seconds: float = 120.0

    @field_validator("app_url", "supabase_url", "s3_endpoint", "openai_base_url", "stripe_api_base")
    @classmethod
    def _strip_trailing_slash(cls, value: str) -> str:
        return value.strip().rstrip("/")

    @model_validator(mode="after")
    def _default_app_url(self) -> Settings:
        if not self.app_url:
            self.app_url = f"http://localhost:{self.port}"
        if self.worker_heartbeat_seconds * 2 > self.worker_dead_after_seconds:
            raise ValueError(
                "WORKER_DEAD_AFTER_SECONDS must be at least twice WORKER_HEARTBEAT_SECONDS: one late beat must not make a live worker's jobs run twice"
            )
        if self.upload_abandon_seconds <= self.signed_url_ttl_seconds:
            raise ValueError(
                "UPLOAD_ABANDON_SECONDS must be longer than SIGNED_URL_TTL_SECONDS: an upload may still be on its way until its URL expires"
            )
        return self

    # --- derived ---
    @property
    def is_production(self) -> bool:
        return self.luster_env == "production"

    @property
    def database_url_or_default(self) -> str:
        """The configured database, else the embedded SQLite file in the data dir."""
        if self.database_url:
            return self.database_url
        return f"sqlite:///{(self.luster_data_dir / 'luster.db').resolve()}"

    @property
    def uses_s3(self) -> bool:
        return bool(self.s3_endpoint or self.s3_bucket)

    @property
    def uses_supabase(self) -> bool:
        return bool(self.supabase_url)

    @property
    def uses_openai(self) -> bool:
        return bool(self.openai_api_key)

    @property
    def uses_stripe(self) -> bool:
        return bool(self.stripe_secret_key)


@functools.cache
def get_settings() -> Settings:
    """The process-wide settings, read once on first use (never at import time)."""
    return Settings()
