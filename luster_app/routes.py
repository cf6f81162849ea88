"""Route constants and URL builders for the web UI, in one place."""

from urllib.parse import urlencode

LANDING = "/"
LOGIN = "/login"
CONFIRM = "/auth/confirm"
LOGOUT = "/logout"
SHOOTS = "/shoots"
SHOOT = "/shoots/[shoot_id]"
JOB = "/jobs/[job_id]"
BILLING = "/billing"
BILLING_SUCCESS = "/billing/success"
BILLING_CANCEL = "/billing/cancel"
ACCOUNT = "/account"
ADMIN = "/admin"


def shoot(shoot_id: str) -> str:
    return f"/shoots/{shoot_id}"


def job(job_id: str) -> str:
    return f"/jobs/{job_id}"


def login(next_path: str | None = None) -> str:
    """The sign-in page, coming back to `next_path` afterwards."""
    return f"{LOGIN}?{urlencode({'next': next_path})}" if next_path else LOGIN
