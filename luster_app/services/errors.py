"""Errors services raise; the API maps each to an HTTP status, the UI shows the message."""


class ServiceError(Exception):
    """Base: `str(exc)` is a message a photographer can act on."""

    status_code = 400


class NotFound(ServiceError):
    status_code = 404


class Conflict(ServiceError):
    status_code = 409


class PaymentRequired(ServiceError):
    status_code = 402


class TooLarge(ServiceError):
    status_code = 413


class UnsupportedMedia(ServiceError):
    status_code = 415


class Invalid(ServiceError):
    status_code = 422


class RateLimited(ServiceError):
    status_code = 429

    def __init__(self, message: str, *, retry_after: int = 60) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class Forbidden(ServiceError):
    status_code = 403


class Busy(RateLimited):
    """This process is at capacity for the work asked (503); the client tries again after `retry_after`."""

    status_code = 503
