"""The retry policy: what is retried, how long it waits, and what the photographer reads."""

from __future__ import annotations

import botocore.exceptions
import pytest
from sqlalchemy.exc import OperationalError

from luster_app.engines.base import EngineError
from luster_app.imaging import ImageRejected
from worker.retry import AttemptError, RetryPolicy, classify


@pytest.mark.parametrize(
    ("failure", "code", "transient"),
    [
        (EngineError("rate_limited", "The image service is busy.", transient=True, retry_after=30), "rate_limited", True),
        (EngineError("content_policy", "The image service declined this photo.", transient=False), "content_policy", False),
        (ImageRejected("The file is truncated or damaged."), "unreadable_image", False),
        (FileNotFoundError("gone"), "original_missing", False),
        (OperationalError("SELECT 1", {}, Exception("server closed the connection")), "database_unavailable", True),
        (botocore.exceptions.EndpointConnectionError(endpoint_url="http://s3.local"), "storage_unavailable", True),
        (ConnectionResetError("reset by peer"), "storage_unavailable", True),
        (ValueError("a bug"), "internal_error", True),
    ],
)
def test_failures_are_sorted_into_transient_and_permanent(failure, code, transient) -> None:
    error = classify(failure)
    assert (error.code, error.transient) == (code, transient)
    assert error.message


def test_a_server_error_from_storage_is_transient() -> None:
    slow_down = botocore.exceptions.ClientError({"Error": {"Code": "SlowDown", "Message": "Reduce your request rate"}}, "PutObject")
    assert classify(slow_down) == AttemptError("storage_unavailable", "Our photo storage did not answer in time.", True)


def test_the_engines_own_message_reaches_the_photographer() -> None:
    error = classify(EngineError("content_policy", "This photo was blocked by the content policy.", transient=False))
    decision = RetryPolicy().decide(error, attempt=1, max_attempts=4)
    assert not decision.retry
    assert decision.message == "This photo was blocked by the content policy. No credit was charged."


def test_backoff_doubles_per_attempt_up_to_the_cap_with_jitter() -> None:
    policy = RetryPolicy(base_seconds=10, max_seconds=60, jitter=0.5)
    for attempt, step in [(1, 10), (2, 20), (3, 40), (4, 60), (9, 60)]:
        waits = [policy.backoff(attempt) for _ in range(200)]
        assert all(step * 0.5 <= wait <= step for wait in waits)
        assert len(set(waits)) > 100  # jittered: workers retrying together spread out


def test_transient_errors_retry_until_max_attempts() -> None:
    policy = RetryPolicy(base_seconds=1, max_seconds=8)
    busy = AttemptError("engine_unavailable", "The image service is busy.", True)
    assert [policy.decide(busy, attempt=n, max_attempts=3).retry for n in (1, 2, 3)] == [True, True, False]
    final = policy.decide(busy, attempt=3, max_attempts=3)
    assert final.message == "The image service is busy. We tried 3 times. No credit was charged. Please try again later."


def test_a_retry_after_hint_is_honoured_within_the_cap() -> None:
    policy = RetryPolicy(base_seconds=1, max_seconds=120)
    assert policy.decide(AttemptError("rate_limited", "Busy.", True, retry_after=90), attempt=1, max_attempts=4).delay_seconds == 90
    capped = policy.decide(AttemptError("rate_limited", "Busy.", True, retry_after=9999), attempt=1, max_attempts=4)
    assert capped.delay_seconds == 120


def test_permanent_errors_never_retry() -> None:
    refused = AttemptError("content_policy", "Declined.", False)
    assert not RetryPolicy().decide(refused, attempt=1, max_attempts=10).retry



def test_an_ai_engine_hiccup_reads_as_one_story_while_retried_and_when_given_up() -> None:
    from luster_app.engines.openai_engine import _retry

    policy = RetryPolicy(base_seconds=1, max_seconds=8)
    error = classify(_retry("rate_limited", "The AI engine is busy (rate limit)", 5))
    assert policy.decide(error, attempt=1, max_attempts=4).message == (
        "The AI engine is busy (rate limit). Retrying automatically.")
    final = policy.decide(error, attempt=4, max_attempts=4).message
    assert final == "The AI engine is busy (rate limit). We tried 4 times. No credit was charged. Please try again later."
    assert "will try again" not in final  # no promise that the next sentence takes back


def test_a_message_that_already_says_nothing_was_charged_does_not_say_it_twice() -> None:
    policy = RetryPolicy()
    said = AttemptError("nothing_to_do", "No sky found in this photo; nothing was charged. Try another preset.", False)
    assert policy.decide(said, attempt=1, max_attempts=4).message == said.message
    said_too = AttemptError("canceled", "You canceled this before it started. No credit was charged.", False)
    assert policy.decide(said_too, attempt=1, max_attempts=4).message.count("charged") == 1
