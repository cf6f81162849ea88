"""/admin: the operator's console in tabs: queue health, users, jobs, prompt versions, Stripe events."""

from __future__ import annotations

import reflex as rx

from luster_app.components.shell import page_shell, submit_button
from luster_app.pages.admin_state import ANY, AdminState, Row
from luster_app.presets import PRESETS
from luster_app.services.admin import JOB_STATUSES


def _table(headers: list[str], rows: rx.Var, cells, **props) -> rx.Component:  # noqa: ANN001
    """A plain table: a header row, then `cells(row)` for each row."""
    return rx.table.root(
        rx.table.header(rx.table.row(*[rx.table.column_header_cell(h) for h in headers])),
        rx.table.body(rx.foreach(rows, lambda row: rx.table.row(*cells(row)))),
        width="100%",
        size="1",
        **props,
    )


def _cell(value) -> rx.Component:  # noqa: ANN001
    return rx.table.cell(value)


def _health() -> rx.Component:
    return rx.vstack(
        rx.hstack(rx.heading("Queue health", size="4"), rx.button("Refresh", on_click=AdminState.refresh, size="1",
                                                                   variant="soft", id="admin-refresh")),
        rx.text("Oldest queued job: ", rx.text.strong(AdminState.stats_oldest, id="admin-oldest")),
        _table(["status", "jobs"], AdminState.stats_by_status, lambda r: [_cell(r["status"]), _cell(r["count"])],
               id="admin-stats"),
        rx.heading("Failures in the last hour", size="3"),
        _table(["error code", "count"], AdminState.stats_failures, lambda r: [_cell(r["code"]), _cell(r["count"])]),
        rx.heading("Balances that differ from their ledger, reserved counts from their jobs", size="3"),
        rx.text("Users: ", rx.text.strong(AdminState.drift.length(), id="admin-drift-count")),
        _table(["email", "balance", "ledger sum", "reserved", "jobs holding a credit"], AdminState.drift,
               lambda r: [_cell(r["email"]), _cell(r["balance"]), _cell(r["ledger"]), _cell(r["reserved"]),
                          _cell(r["reserving"])], id="admin-drift"),
        width="100%",
    )


def _user_cells(row: Row) -> list[rx.Component]:
    adjust = rx.form(
        rx.hstack(
            rx.input(type="hidden", name="user_id", value=row["id"]),
            rx.input(name="delta", placeholder="+5 or -2", width="6em", size="1", required=True),
            rx.input(name="reason", placeholder="reason", size="1", required=True),
            submit_button("Apply", size="1"),
        ),
        on_submit=AdminState.adjust_credits,
        reset_on_submit=True,
    )
    return [_cell(row["email"]), _cell(row["admin"]), _cell(row["balance"]), _cell(row["reserved"]),
            _cell(row["available"]), _cell(row["created"]), _cell(adjust)]


def _users() -> rx.Component:
    return rx.vstack(
        rx.form(
            rx.hstack(rx.input(name="q", placeholder="search by email", id="admin-user-search"),
                      submit_button("Search")),
            on_submit=AdminState.search_users,
        ),
        rx.text("Users found: ", AdminState.users_total, color_scheme="gray", size="2"),
        _table(["email", "", "balance", "reserved", "available", "since", "grant or take credits"],
               AdminState.users, _user_cells, id="admin-users"),
        width="100%",
    )


def _job_cells(row: Row) -> list[rx.Component]:
    actions = rx.hstack(
        rx.button("Timeline", size="1", variant="soft", on_click=AdminState.show_job(row["id"])),
        rx.cond(row["status"] == "failed", rx.button("Retry", size="1", on_click=AdminState.retry_job(row["id"]))),
        rx.cond(row["status"] == "queued",
                rx.button("Cancel", size="1", color_scheme="red", on_click=AdminState.cancel_job(row["id"]))),
    )
    return [_cell(row["short_id"]), _cell(row["email"]), _cell(row["preset"]), _cell(row["status"]),
            _cell(row["attempts"]), _cell(row["error"]), _cell(row["redrawn"]), _cell(row["created"]), _cell(actions)]


def _jobs() -> rx.Component:
    filters = rx.form(
        rx.hstack(
            rx.select([ANY, *JOB_STATUSES], name="status", default_value=ANY),
            rx.input(name="email", placeholder="owner email"),
            rx.select([ANY, *PRESETS], name="preset", default_value=ANY),
            rx.input(name="prompt_version", placeholder="prompt version", width="8em"),
            rx.input(name="min_age", placeholder="older than (min)", width="9em"),
            submit_button("Filter"),
            wrap="wrap",
        ),
        on_submit=AdminState.filter_jobs,
    )
    timeline = rx.cond(
        AdminState.timeline_title != "",
        rx.card(
            rx.heading(AdminState.timeline_title, size="3"),
            _table(["at", "event", "detail"], AdminState.timeline,
                   lambda r: [_cell(r["at"]), _cell(r["type"]), _cell(r["detail"])], id="admin-timeline"),
            width="100%",
        ),
    )
    return rx.vstack(
        filters,
        rx.text(AdminState.jobs_caption, color_scheme="gray", size="2", id="admin-jobs-caption"),
        _table(["job", "owner", "preset", "status", "attempts", "error", "redrawn", "created", ""], AdminState.jobs, _job_cells,
               id="admin-jobs"),
        timeline,
        width="100%",
    )


def _version_cells(row: Row) -> list[rx.Component]:
    actions = rx.hstack(
        rx.cond(row["active"] == "",
                rx.button("Activate", size="1", on_click=AdminState.activate_version(row["version"]))),
        rx.button("Jobs", size="1", variant="soft", on_click=AdminState.jobs_of_version(row["version"])),
    )
    return [_cell(row["version"]), _cell(row["active"]), _cell(row["jobs"]),
            _cell(rx.text(row["template"], size="1")), _cell(row["created"]), _cell(actions)]


def _prompts() -> rx.Component:
    return rx.vstack(
        rx.select(list(PRESETS), value=AdminState.prompt_preset, on_change=AdminState.choose_preset),
        _table(["version", "", "jobs", "template", "created", ""], AdminState.versions, _version_cells,
               id="admin-versions"),
        rx.form(
            rx.vstack(
                rx.text_area(name="template", placeholder="New template; {field} names a parameter of the preset",
                             width="100%", rows="4", required=True),
                rx.hstack(rx.checkbox("Make it active", name="activate"), submit_button("Add version")),
                width="100%",
            ),
            on_submit=AdminState.add_version,
            reset_on_submit=True,
            width="100%",
        ),
        width="100%",
    )


def _stripe() -> rx.Component:
    return _table(
        ["received", "event", "type", "outcome"], AdminState.stripe_events,
        lambda r: [_cell(r["received"]), _cell(r["id"]), _cell(r["type"]), _cell(r["outcome"])], id="admin-stripe",
    )


def _console() -> rx.Component:
    sections = [("health", "Queue health", _health), ("users", "Users", _users), ("jobs", "Jobs", _jobs),
                ("prompts", "Prompt versions", _prompts), ("stripe", "Stripe events", _stripe)]
    return rx.tabs.root(
        rx.tabs.list(*[rx.tabs.trigger(title, value=key) for key, title, _ in sections]),
        *[rx.tabs.content(rx.box(build(), padding_top="1em"), value=key) for key, _, build in sections],
        value=AdminState.tab,
        on_change=AdminState.choose_tab,
        width="100%",
    )


def admin_page() -> rx.Component:
    """The console for admins; "not allowed" for everyone else."""
    return page_shell(
        rx.heading("Admin", size="7"),
        rx.cond(AdminState.notice != "", rx.callout(AdminState.notice, color_scheme="green", id="admin-notice")),
        rx.cond(AdminState.problem != "", rx.callout(AdminState.problem, color_scheme="red", id="admin-problem")),
        rx.cond(
            AdminState.allowed,
            _console(),
            rx.cond(
                AdminState.checked,
                rx.callout("Not allowed: this page is for Luster administrators.", color_scheme="red",
                           id="admin-not-allowed"),
                rx.spinner(),
            ),
        ),
    )
