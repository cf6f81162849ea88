"""Production guards: with LUSTER_ENV=production, refuse to start on settings meant for one laptop.

The embedded providers (SQLite, local storage, local magic links, the local checkout page) are
for a single operator's machine; in production each of them would lose data or hand out free
credits. Every problem is reported at once, each naming the exact setting to fix.
"""

from __future__ import annotations

from urllib.parse import urlsplit

from luster_app.config import PLACEHOLDER_SECRETS, Settings

# Words that mark a value copied from an example rather than a real credential.
_PLACEHOLDER_MARKERS = ("placeholder", "changeme", "change-me", "change_me", "your-", "your_", "<", ">")
# Vendor prefixes stripped before comparing with PLACEHOLDER_SECRETS ("sk_test_xxx" is "xxx").
_SECRET_PREFIXES = ("sk_live_", "sk_test_", "rk_live_", "rk_test_", "whsec_", "sk-proj-", "sk-")

# Stripe keys of test mode, where a checkout completes with Stripe's published test cards.
_STRIPE_TEST_MODE = ("sk_test_", "rk_test_")
# Secrets production cannot run without, and secrets checked only when they are set.
_REQUIRED_SECRETS = ("supabase_anon_key", "stripe_secret_key", "stripe_webhook_secret",
                     "s3_access_key_id", "s3_secret_access_key")
_OPTIONAL_SECRETS = ("supabase_jwt_secret", "openai_api_key", "metrics_token")


class UnsafeSettingsError(RuntimeError):
    """Settings that must not reach production; the message names every setting to fix."""

    def __init__(self, problems: list[str]) -> None:
        self.problems = problems
        lines = "\n".join(f"  - {problem}" for problem in problems)
        super().__init__(f"LUSTER_ENV=production refuses to start:\n{lines}")


def is_placeholder(value: str) -> bool:
    """True for an empty secret or one copied from an example (`changeme`, `sk_test_placeholder`, …)."""
    lowered = value.strip().lower()
    if lowered in PLACEHOLDER_SECRETS or any(marker in lowered for marker in _PLACEHOLDER_MARKERS):
        return True
    for prefix in _SECRET_PREFIXES:
        if lowered.startswith(prefix):
            return lowered.removeprefix(prefix) in PLACEHOLDER_SECRETS
    return False


def production_problems(settings: Settings) -> list[str]:
    """What is wrong with `settings` for production, one line per setting; empty when all is well."""
    if not settings.is_production:
        return []
    problems: list[str] = []
    if not settings.uses_supabase:
        problems.append("SUPABASE_URL is unset: the embedded auth provider (local magic links) is not for production")
    if not settings.uses_stripe:
        problems.append("STRIPE_SECRET_KEY is unset: the embedded payment provider (local checkout) is not for production")
    database_scheme = settings.database_url.partition("://")[0]
    if not settings.database_url or database_scheme.startswith("sqlite"):
        problems.append("DATABASE_URL must point at PostgreSQL: the embedded SQLite database is not for production")
    elif database_scheme != "postgresql+psycopg":
        # Hosts hand out postgres:// URLs; SQLAlchemy would then look for psycopg2, which is not installed.
        problems.append(f"DATABASE_URL must start with postgresql+psycopg:// (psycopg 3), not {database_scheme}://")
    if not settings.uses_s3:
        problems.append("S3_BUCKET and S3_ENDPOINT are unset: embedded local storage is not for production")
    elif not settings.s3_bucket:
        problems.append("S3_BUCKET is unset")
    app_url = urlsplit(settings.app_url)
    if app_url.scheme != "https" or not app_url.hostname:
        problems.append(f"APP_URL must be the app's public https:// URL, not {settings.app_url!r}")
    already_reported = {problem.split()[0] for problem in problems}
    for name in _REQUIRED_SECRETS:
        if name.upper() not in already_reported and is_placeholder(getattr(settings, name)):
            problems.append(f"{name.upper()} is missing or a placeholder")
    if settings.stripe_secret_key.startswith(_STRIPE_TEST_MODE) and not any(p.startswith("STRIPE_SECRET_KEY") for p in problems):
        problems.append(
            "STRIPE_SECRET_KEY is a test-mode key: anyone could buy credits with Stripe's test cards; use the live key"
        )
    for name in _OPTIONAL_SECRETS:
        value = getattr(settings, name)
        if value and is_placeholder(value):
            problems.append(f"{name.upper()} is a placeholder")
    if settings.openai_timeout_seconds >= settings.job_lease_seconds:
        problems.append(
            f"OPENAI_TIMEOUT_SECONDS ({settings.openai_timeout_seconds:g}) must be below JOB_LEASE_SECONDS "
            f"({settings.job_lease_seconds}), or a slow engine call outlives its lease and the job runs twice"
        )
    return problems


def check_production_settings(settings: Settings) -> None:
    """Raise UnsafeSettingsError when LUSTER_ENV=production and any setting is unsafe; else do nothing."""
    if problems := production_problems(settings):
        raise UnsafeSettingsError(problems)


def prepare_process(settings: Settings) -> None:
    """The first step of every long-running process (app, worker, migrate): logging, then the
    guards, then error tracking (if SENTRY_DSN is set)."""
    from luster_app.error_tracking import configure_error_tracking
    from luster_app.logging import configure_logging

    configure_logging(settings)
    check_production_settings(settings)
    configure_error_tracking(settings)
