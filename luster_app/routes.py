"""Route constants and URL builders for the web UI, in one place."""

LANDING = "/"
LOGIN = "/login"
CONFIRM = "/auth/confirm"
LOGOUT = "/logout"
SHOOTS = "/shoots"
BILLING = "/billing"
ACCOUNT = "/account"
ADMIN = "/admin"


def shoot(shoot_id: str) -> str:
    return f"/shoots/{shoot_id}"


def job(job_id: str) -> str:
    return f"/jobs/{job_id}"
