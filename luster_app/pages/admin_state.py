"""The admin console's state (the page is `pages/admin.py`).

Thin on purpose: every handler re-verifies the session cookie and calls a `services.admin`
function, which refuses non-admins; the page then shows "not allowed" and holds no data.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from datetime import timedelta

import reflex as rx
from sqlmodel import Session

from luster_app.models import User
from luster_app.presets import PRESETS
from luster_app.services import admin
from luster_app.services.errors import Forbidden, NotFound, ServiceError
from luster_app.services.queue_health import queue_health
from luster_app.state import AuthState, app_context

Row = dict[str, str]
ANY = "any"  # a filter menu's "no filter" choice


def _when(value) -> str:  # noqa: ANN001
    return value.strftime("%Y-%m-%d %H:%M UTC") if value else ""


def _user_row(row: admin.UserRow) -> Row:
    return {
        "id": str(row.id), "email": row.email, "admin": "admin" if row.is_admin else "", "balance": str(row.balance),
        "reserved": str(row.reserved), "available": str(row.available), "created": _when(row.created_at),
    }


def _job_row(row: admin.JobRow) -> Row:
    job = row.job
    return {
        "id": str(job.id), "short_id": str(job.id)[:8], "email": row.email, "preset": job.preset, "status": job.status,
        "attempts": f"{job.attempts}/{job.max_attempts}", "error": job.error_code or "", "created": _when(job.created_at),
        "redrawn": _redrawn(job.alteration),
    }


def _redrawn(alteration: dict | None) -> str:
    """What an edit redrew inside and outside its preset's region (honest edits), in brief."""
    if not alteration:
        return ""
    largest = alteration.get("largest_outside")
    text = f"in {100 * alteration['redrawn_inside']:.1f}% · out {100 * alteration['redrawn_outside']:.1f}%"
    return text + (f" (largest {100 * largest['share']:.1f}%)" if largest else "")


def _uuid(text: object) -> uuid.UUID:
    try:
        return uuid.UUID(str(text))
    except ValueError:
        raise NotFound("Not found.") from None


def _int(text: str) -> int | None:
    text = text.strip()
    return int(text) if text.lstrip("-").isdigit() else None


class AdminState(AuthState):
    """What the console shows; nothing here is trusted when the next event arrives."""

    tab: str = "health"
    checked: bool = False
    allowed: bool = False
    problem: str = ""
    notice: str = ""
    user_search: str = ""
    users: list[Row] = []
    users_total: int = 0
    job_filters: Row = {"status": "", "email": "", "preset": "", "min_age": "", "prompt_version": ""}
    jobs: list[Row] = []
    jobs_caption: str = ""
    timeline_title: str = ""
    timeline: list[Row] = []
    prompt_preset: str = "enhance"
    versions: list[Row] = []
    stripe_events: list[Row] = []
    stats_by_status: list[Row] = []
    stats_oldest: str = ""
    stats_failures: list[Row] = []
    drift: list[Row] = []

    def _as_admin(self, action: Callable[[Session, User], str | None]):
        """Verify the session, run `action` with the signed-in user, and show what came of it."""
        user = self._signed_in_user()
        if user is None:
            return self._sign_in_first()
        self.problem = self.notice = ""
        try:
            with app_context().session() as session:
                self.notice = action(session, user) or ""
        except Forbidden:
            self._forget_console()
        except ServiceError as exc:
            self.problem = str(exc)
        else:
            self.allowed = True
        finally:
            self.checked = True
        # The navbar's balance: admin actions (adjustments) can change the admin's own.
        self._load_credits(user)
        return None

    def _forget_console(self) -> None:
        self.allowed = False
        self.users, self.jobs, self.timeline, self.versions, self.stripe_events = [], [], [], [], []
        self.stats_by_status, self.stats_failures, self.stats_oldest, self.drift = [], [], "", []

    def _load_users(self, session: Session, user: User) -> None:
        page = admin.list_users(session=session, admin=user, search=self.user_search, limit=50)
        self.users, self.users_total = [_user_row(row) for row in page.items], page.total

    def _load_jobs(self, session: Session, user: User) -> None:
        given = self.job_filters
        min_age = _int(given["min_age"])
        filters = admin.JobFilter(
            status=given["status"] or None, email=given["email"] or None, preset=given["preset"] or None,
            prompt_version=_int(given["prompt_version"]), min_age=timedelta(minutes=min_age) if min_age else None,
        )
        page = admin.list_jobs(session=session, admin=user, filters=filters, limit=50)
        self.jobs = [_job_row(row) for row in page.items]
        shown = ", ".join(f"{name.replace('_', ' ')} {value}" for name, value in given.items() if value)
        self.jobs_caption = f"Jobs found: {page.total}" + (f" ({shown})" if shown else "")

    def _load_versions(self, session: Session, user: User) -> None:
        rows = admin.list_prompt_versions(session=session, admin=user, preset=self.prompt_preset)
        self.versions = [
            {"version": str(r.version.version), "active": "active" if r.version.is_active else "", "jobs": str(r.jobs),
             "template": r.version.template, "created": _when(r.version.created_at)}
            for r in rows
        ]

    def _load_health(self, session: Session, user: User) -> None:
        health = queue_health(session=session, admin=user)
        self.stats_by_status = [{"status": s, "count": str(n)} for s, n in health.jobs_by_status.items()]
        age = health.oldest_queued_age_seconds
        self.stats_oldest = "no job is queued" if age is None else f"{age / 60:.1f} minutes"
        failures = {**{f"retried: {c}": n for c, n in health.retried_last_hour.items()},
                    **{f"failed: {c}": n for c, n in health.failed_last_hour.items()}}
        self.stats_failures = [{"code": code, "count": str(n)} for code, n in sorted(failures.items())]
        self.drift = [
            {"email": d.email, "balance": str(d.balance), "ledger": str(d.ledger_sum), "reserved": str(d.reserved),
             "reserving": str(d.reserving_jobs)}
            for d in admin.credit_drift(session=session, admin=user)
        ]
        events = admin.recent_stripe_events(session=session, admin=user, limit=30)
        self.stripe_events = [
            {"id": e.id, "type": e.type, "received": _when(e.received_at), "outcome": e.outcome} for e in events
        ]

    def _load_all(self, session: Session, user: User) -> None:
        for load in (self._load_health, self._load_users, self._load_jobs, self._load_versions):
            load(session, user)

    @rx.event
    def load(self):
        """on_load: signed-out visitors sign in first; non-admins see "not allowed"."""
        return self._as_admin(self._load_all)

    @rx.event
    def refresh(self):
        return self._as_admin(self._load_all)

    @rx.event
    def choose_tab(self, tab: str):
        self.tab = tab

    @rx.event
    def search_users(self, form: dict):
        self.user_search = str(form.get("q", ""))
        return self._as_admin(self._load_users)

    @rx.event
    def adjust_credits(self, form: dict):
        """Grant (positive) or take (negative) credits with a reason."""
        delta = _int(str(form.get("delta", "")))

        def adjust(session: Session, user: User) -> str:
            row = admin.adjust_credits(
                session=session, admin=user, user_id=_uuid(form.get("user_id")), delta=delta or 0,
                reason=str(form.get("reason", "")),
            )
            self._load_users(session, user)
            return f"{row.email}: balance {row.balance}"

        return self._as_admin(adjust)

    @rx.event
    def filter_jobs(self, form: dict):
        given = {name: str(form.get(name, "")).strip() for name in self.job_filters}
        self.job_filters = {name: "" if value == ANY else value for name, value in given.items()}
        return self._as_admin(self._load_jobs)

    def _show_timeline(self, session: Session, user: User, job_id: str) -> None:
        found = admin.job_timeline(session=session, admin=user, job_id=_uuid(job_id))
        job = found.view.job
        self.timeline_title = f"{job.preset} job {job_id[:8]} of {found.email}: {job.status}"
        self.timeline = [
            {"at": _when(e.at), "type": e.type, "detail": ", ".join(f"{k}={v}" for k, v in e.detail.items())}
            for e in found.view.events
        ]

    @rx.event
    def show_job(self, job_id: str):
        """The job's event timeline, oldest first."""
        return self._as_admin(lambda session, user: self._show_timeline(session, user, job_id))

    def _job_action(self, job_id: str, act: Callable[..., object], done: str):
        def run(session: Session, user: User) -> str:
            act(session=session, admin=user, job_id=_uuid(job_id))
            self._load_jobs(session, user)
            self._show_timeline(session, user, job_id)
            return f"Job {job_id[:8]} {done}."

        return self._as_admin(run)

    @rx.event
    def retry_job(self, job_id: str):
        extra = app_context().settings.job_max_attempts

        def retry(**kwargs: object) -> object:
            return admin.retry_job(**kwargs, extra_attempts=extra)

        return self._job_action(job_id, retry, "is queued again")

    @rx.event
    def cancel_job(self, job_id: str):
        return self._job_action(job_id, admin.cancel_job, "is canceled")

    @rx.event
    def choose_preset(self, preset: str):
        self.prompt_preset = preset if preset in PRESETS else "enhance"
        return self._as_admin(self._load_versions)

    @rx.event
    def add_version(self, form: dict):
        def add(session: Session, user: User) -> str:
            row = admin.add_prompt_version(
                session=session, admin=user, preset=self.prompt_preset, template=str(form.get("template", "")),
                activate=bool(form.get("activate")),
            )
            self._load_versions(session, user)
            return f"{self.prompt_preset} version {row.version} added" + (" and active." if row.is_active else ".")

        return self._as_admin(add)

    @rx.event
    def activate_version(self, version: str):
        def activate(session: Session, user: User) -> str:
            admin.activate_prompt_version(session=session, admin=user, preset=self.prompt_preset, version=_int(version) or 0)
            self._load_versions(session, user)
            return f"{self.prompt_preset} version {version} is active: new jobs use it."

        return self._as_admin(activate)

    @rx.event
    def jobs_of_version(self, version: str):
        """The jobs tab, filtered to the jobs that used this prompt version."""
        self.job_filters = {**dict.fromkeys(self.job_filters, ""), "preset": self.prompt_preset, "prompt_version": version}
        self.tab = "jobs"
        return self._as_admin(self._load_jobs)
