"""The one retry policy: which failures are worth another attempt, how long to wait, what to say."""

from __future__ import annotations

import random
from dataclasses import dataclass

from botocore.exceptions import BotoCoreError, ClientError
from sqlalchemy.exc import DBAPIError

from luster_app.config import Settings
from luster_app.engines.base import EngineError
from luster_app.imaging import ImageRejected

NO_CHARGE = "No credit was charged."


@dataclass(frozen=True)
class AttemptError:
    """Why an attempt failed, in the terms the policy and the photographer need."""

    code: str
    message: str
    transient: bool
    retry_after: float | None = None


def classify(exc: BaseException) -> AttemptError:
    """Sort a failure into transient (retry) or permanent (fail now), with a message to show."""
    if isinstance(exc, EngineError):
        return AttemptError(exc.code, exc.message, exc.transient, exc.retry_after)
    if isinstance(exc, ImageRejected):
        return AttemptError("unreadable_image", f"We could not read this photo: {exc.reason} Upload it again.", False)
    if isinstance(exc, FileNotFoundError):
        return AttemptError("original_missing", "The original photo is no longer in storage; upload it again.", False)
    if isinstance(exc, DBAPIError):
        return AttemptError("database_unavailable", "Our database did not answer in time.", True)
    if isinstance(exc, (BotoCoreError, ClientError, OSError)):
        return AttemptError("storage_unavailable", "Our photo storage did not answer in time.", True)
    # A bug or an unforeseen error: retried, since it may not recur, but never charged.
    return AttemptError("internal_error", "Something went wrong on our side while processing this photo.", True)


@dataclass(frozen=True)
class RetryDecision:
    retry: bool
    delay_seconds: float = 0.0
    message: str = ""  # what the photographer reads on the job


@dataclass(frozen=True)
class RetryPolicy:
    """Exponential backoff with jitter for transient errors, up to the job's `max_attempts`."""

    base_seconds: float = 10.0
    max_seconds: float = 600.0
    jitter: float = 0.5  # the wait is drawn from [1 - jitter, 1] × the exponential step

    @classmethod
    def from_settings(cls, settings: Settings) -> RetryPolicy:
        return cls(base_seconds=settings.job_retry_base_seconds, max_seconds=settings.job_retry_max_seconds)

    def backoff(self, attempt: int) -> float:
        """The wait after failed attempt number `attempt` (1-based)."""
        step = min(self.max_seconds, self.base_seconds * 2 ** (attempt - 1))
        return step * random.uniform(1 - self.jitter, 1)  # noqa: S311  (jitter, not security)

    def decide(self, error: AttemptError, *, attempt: int, max_attempts: int) -> RetryDecision:
        """Retry (and when) or fail now, and the message the job shows either way."""
        if not error.transient:
            # Some engine messages already say so ("No sky found…; nothing was charged."): once is enough.
            said = "was charged" in error.message.lower()
            return RetryDecision(retry=False, message=error.message if said else f"{error.message} {NO_CHARGE}")
        if attempt >= max_attempts:
            return RetryDecision(
                retry=False, message=f"{error.message} We tried {attempt} times. {NO_CHARGE} Please try again later."
            )
        delay = max(self.backoff(attempt), min(error.retry_after or 0.0, self.max_seconds))
        return RetryDecision(retry=True, delay_seconds=delay, message=f"{error.message} Retrying automatically.")
