"""/jobs/[job_id]: one enhancement from start to end, and in plain words what to do if it failed."""

from __future__ import annotations

import asyncio
import dataclasses
import uuid
from typing import Any

import reflex as rx

from luster_app import routes
from luster_app.components.shell import error_callout, loading, page_shell
from luster_app.context import AppContext
from luster_app.models import JobStatus
from luster_app.pages.shoot_view import STATUS_WORDS
from luster_app.services.corrections import corrections_note
from luster_app.services.errors import NotFound, ServiceError
from luster_app.services.jobs import get_job_for_user
from luster_app.services.shoots import get_asset_with_urls
from luster_app.state import AuthState, app_context

POLL_SECONDS = 2
MAX_POLLS = 1800
EVENT_WORDS = {
    "created": "Queued",
    "claimed": "Started processing",
    "attempt_failed": "Attempt failed, will retry",
    "lease_expired": "Worker stopped answering; picked up again",
    "released": "Put back in the queue (worker shutting down)",
    "succeeded": "Finished",
    "failed": "Failed",
    "canceled": "Canceled",
}
# What a photographer can do about each kind of failure (the message itself says what happened).
NEXT_STEPS = {
    # The message already says that no credit was charged: this says only what to do.
    "canceled": "Enhance the photo again from the shoot page when you have credits.",
    "preset_unsupported": "Re-run this photo with another preset from the shoot page.",
    "moderation_blocked": "The AI service would not edit this photo. Try another preset, or another photo.",
    "content_policy_violation": "The AI service would not edit this photo. Try another preset, or another photo.",
    "nothing_to_change": "Nothing to do: turn on another correction, or raise Enhance's strength, and re-run.",
    "invalid_image": "Upload the photo again (a fresh export from your camera or phone), then enhance it.",
    "original_missing": "Upload the photo again, then enhance the new upload.",
    "engine_quota": "The problem is on our side: try again later.",
    "engine_auth": "The problem is on our side: try again later.",
    "model_not_found": "The problem is on our side: try again later.",
}
DEFAULT_NEXT_STEP = "Re-run the photo from the shoot page; if it fails again, try another preset."


@dataclasses.dataclass
class TimelineRow:
    when: str
    what: str
    detail: str


@dataclasses.dataclass
class JobOutput:
    id: str
    filename: str
    thumb_url: str
    dimensions: str


@dataclasses.dataclass
class JobInfo:
    shoot_id: str = ""
    photo: str = ""
    photo_thumb: str = ""
    preset: str = ""
    status: str = ""
    status_word: str = ""
    attempts: str = ""
    error: str = ""
    next_step: str = ""
    created: str = ""
    finished: str = ""
    corrections: str = ""


def _event_detail(detail: dict[str, Any]) -> str:
    parts = []
    if detail.get("attempt"):
        parts.append(f"attempt {detail['attempt']}")
    if detail.get("message"):
        parts.append(str(detail["message"]))
    if detail.get("retry_in_seconds"):
        parts.append(f"retrying in {round(float(detail['retry_in_seconds']))} s")
    if detail.get("version"):
        parts.append(f"version {detail['version']}")
    return " · ".join(parts)


def _job(context: AppContext, user_id: uuid.UUID, job_id: uuid.UUID) -> tuple[JobInfo, list[TimelineRow], list[JobOutput]]:
    with context.session() as session:
        found = get_job_for_user(session=session, user_id=user_id, job_id=job_id)
        job = found.job
        photo = get_asset_with_urls(session=session, storage=context.storage, settings=context.settings,
                                    user_id=user_id, asset_id=job.asset_id)
        ttl = context.settings.signed_url_ttl_seconds
        outputs = [
            JobOutput(
                id=str(item.output.id),
                filename=item.output.filename,
                thumb_url=context.storage.signed_get_url((item.thumb or item.output).storage_key, expires_in=ttl),
                dimensions=f"{item.output.width} × {item.output.height}",
            )
            for item in found.outputs
        ]
    stamp = "%b %d, %H:%M:%S UTC"
    says_why = job.status in (JobStatus.FAILED, JobStatus.CANCELED)
    info = JobInfo(
        shoot_id=str(photo.shoot_id),
        photo=photo.filename,
        photo_thumb=photo.thumb_url or "",
        preset=job.preset.title(),
        status=job.status,
        status_word=STATUS_WORDS.get(job.status, job.status),
        attempts=f"{job.attempts} of {job.max_attempts}",
        error=(job.error_message or "") if says_why else "",
        next_step=NEXT_STEPS.get(job.error_code or "", DEFAULT_NEXT_STEP) if says_why else "",
        created=job.created_at.strftime(stamp),
        finished=job.finished_at.strftime(stamp) if job.finished_at else "",
        corrections=corrections_note(job.corrections),
    )
    timeline = [
        TimelineRow(when=e.at.strftime(stamp), what=EVENT_WORDS.get(e.type, e.type.replace("_", " ").capitalize()),
                    detail=_event_detail(e.detail or {}))
        for e in found.events
    ]
    return info, timeline, outputs


class JobState(AuthState):
    """One job's status, timeline and outputs."""

    job_id: str = ""
    info: JobInfo = JobInfo()
    timeline: list[TimelineRow] = []
    outputs: list[JobOutput] = []
    loaded: bool = False
    missing: bool = False
    error: str = ""

    def _job_id(self) -> uuid.UUID | None:
        try:
            return uuid.UUID(self.router.url.path.rstrip("/").rsplit("/", 1)[-1])
        except ValueError:
            return None

    async def _fetch(self, user_id: uuid.UUID, job_id: uuid.UUID) -> None:
        try:
            self.info, self.timeline, self.outputs = await asyncio.to_thread(_job, app_context(), user_id, job_id)
            self.job_id = str(job_id)
        except NotFound:
            self.missing = True
        except ServiceError as exc:
            self.error = str(exc)

    @rx.event
    async def load(self):
        """Show the job; keep it current while it is still queued or processing."""
        user, job_id = self._signed_in_user(), self._job_id()
        if user is None:
            yield self._sign_in_first()
            return
        self._load_credits(user)
        self.missing, self.error = job_id is None, ""
        if str(job_id) != self.job_id:
            self.loaded = False
        yield
        if job_id is not None:
            await self._fetch(user.id, job_id)
        self.loaded = True
        if self.info.status in JobStatus.ACTIVE:
            yield JobState.follow

    @rx.event(background=True)
    async def follow(self):
        """Refresh every few seconds until the job is finished or the page is left."""
        for _ in range(MAX_POLLS):
            await asyncio.sleep(POLL_SECONDS)
            async with self:
                user, job_id = self._signed_in_user(), self._job_id()
                if user is None or job_id is None or str(job_id) != self.job_id:
                    return
                await self._fetch(user.id, job_id)
                if self.info.status not in JobStatus.ACTIVE:
                    self._load_credits(user)
                    return


def _summary() -> rx.Component:
    info = JobState.info
    return rx.card(
        rx.flex(
            rx.cond(info.photo_thumb != "", rx.image(src=info.photo_thumb, alt=info.photo, width="8em", height="6em", object_fit="cover",
                                                     border_radius="var(--radius-2)")),
            rx.data_list.root(
                rx.data_list.item(rx.data_list.label("Photo"), rx.data_list.value(info.photo)),
                rx.data_list.item(rx.data_list.label("Preset"), rx.data_list.value(info.preset)),
                rx.data_list.item(
                    rx.data_list.label("Status"),
                    rx.data_list.value(rx.badge(info.status_word, id="job-status",
                                                color_scheme=rx.match(info.status, ("succeeded", "green"),
                                                                      ("failed", "red"), ("processing", "blue"), "gray"))),
                ),
                rx.data_list.item(rx.data_list.label("Attempts"), rx.data_list.value(info.attempts)),
                rx.cond(info.corrections != "", rx.data_list.item(
                    rx.data_list.label("Corrections"), rx.data_list.value(info.corrections, id="job-corrections"))),
                rx.data_list.item(rx.data_list.label("Queued"), rx.data_list.value(info.created)),
                rx.cond(info.finished != "", rx.data_list.item(rx.data_list.label("Finished"),
                                                               rx.data_list.value(info.finished))),
                size="2",
            ),
            gap="4",
            direction=rx.breakpoints(initial="column", sm="row"),
        ),
        width="100%",
    )


def job_page() -> rx.Component:
    """Status, what went wrong and what to do next, the event timeline, and the outputs."""
    return page_shell(
        rx.cond(
            JobState.missing,
            error_callout("This job does not exist, or it belongs to another account.", id="job-missing"),
            rx.cond(
                JobState.loaded,
                rx.vstack(
                    rx.link("← Back to the shoot", href=routes.SHOOTS + "/" + JobState.info.shoot_id, size="2",
                            id="job-back"),
                    rx.heading("Enhancing ", JobState.info.photo, size="6"),
                    rx.cond(JobState.error != "", error_callout(JobState.error)),
                    _summary(),
                    rx.cond(
                        JobState.info.error != "",
                        rx.callout(
                            rx.vstack(rx.text(JobState.info.error, weight="medium"),
                                      rx.text("What to do: ", JobState.info.next_step), spacing="1"),
                            icon="triangle_alert", color_scheme="red", width="100%", id="job-error",
                        ),
                    ),
                    rx.heading("Timeline", size="4"),
                    rx.vstack(
                        rx.foreach(
                            JobState.timeline,
                            lambda row: rx.hstack(
                                rx.icon("circle_dot", size=14, color="var(--accent-9)", margin_top="0.2em"),
                                rx.vstack(rx.text(row.what, weight="medium", size="2"),
                                          rx.text(row.when, " ", row.detail, size="1", color_scheme="gray"), spacing="0"),
                                align="start",
                                class_name="timeline-row",
                            ),
                        ),
                        spacing="3",
                        id="job-timeline",
                    ),
                    rx.cond(
                        JobState.outputs.length() > 0,
                        rx.vstack(
                            rx.heading("Result", size="4"),
                            rx.foreach(
                                JobState.outputs,
                                lambda o: rx.hstack(
                                    rx.image(src=o.thumb_url, alt="Result: " + o.filename, width="8em", border_radius="var(--radius-2)"),
                                    rx.vstack(rx.text(o.filename, size="2"), rx.text(o.dimensions, size="1",
                                                                                     color_scheme="gray")),
                                ),
                            ),
                            width="100%",
                        ),
                    ),
                    spacing="4",
                    width="100%",
                ),
                loading("Loading the job…"),
            ),
        ),
    )
