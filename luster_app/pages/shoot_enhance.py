"""The shoot page's Enhance dialog: the preset and its parameters for the selection (or one photo
re-run), what it will cost, and queuing the jobs.

A substate of ShootState (its photos, selection and session are inherited), kept out of shoot.py.
"""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

import reflex as rx

from luster_app.pages import shoot_view as view
from luster_app.pages.shoot import ShootState
from luster_app.services.errors import PaymentRequired, ServiceError
from luster_app.state import app_context


class ShootEnhanceState(ShootState):
    """The presets on offer and the Enhance dialog's form."""

    presets: list[view.PresetOption] = []
    preset: str = "enhance"
    values: dict[str, str] = {}
    numbers: dict[str, float] = {}  # the sliders' values, as numbers
    enhance_open: bool = False
    rerun_id: str = ""
    enhancing: bool = False
    # One Idempotency-Key per opening of the Enhance dialog, spent by its success: a confirm
    # dispatched twice (a double tap, an event replayed after a reconnect) queues the jobs once.
    enhance_key: str = ""

    @rx.var
    def targets(self) -> list[str]:
        """The photos the enhance dialog is about: one being re-run, or the selection."""
        return [self.rerun_id] if self.rerun_id else self.selected

    @rx.var
    def chosen(self) -> view.PresetOption:
        found = [p for p in self.presets if p.name == self.preset]
        return found[0] if found else view.PresetOption("", "", "", False, False, [])

    def _reset_values(self) -> None:
        fields = self.chosen.fields
        self.values = {field.name: field.default for field in fields}
        if "auto_privacy" in self.values:  # the shoot's setting is the panel's starting point
            self.values["auto_privacy"] = "true" if self.info.auto_privacy else "false"
        self.numbers = {field.name: float(field.default) for field in fields if field.kind == "slider"}

    @rx.event
    def choose_preset(self, name: str):
        self.preset = name
        self._reset_values()

    @rx.event
    def set_value(self, name: str, value: Any):
        if isinstance(value, list):  # a slider reports a list of thumbs
            value = float(value[0]) if value else 0.0
            self.numbers = {**self.numbers, name: value}
            value = round(value, 2)
        if isinstance(value, bool):
            value = "true" if value else "false"
        self.values = {**self.values, name: str(value)}

    @rx.event
    def open_enhance(self):
        self.rerun_id, self.enhance_open, self.payment_needed, self.error = "", True, "", ""
        self.enhance_key = uuid.uuid4().hex

    @rx.event
    def open_rerun(self, asset_id: str):
        self.rerun_id, self.enhance_open, self.payment_needed, self.error = asset_id, True, "", ""
        self.enhance_key = uuid.uuid4().hex

    @rx.event
    def set_enhance_open(self, is_open: bool):
        self.enhance_open = is_open

    @rx.event
    async def confirm_enhance(self):
        """Queue the jobs (one credit each, charged on success); a 402 says how to get credits."""
        user = self._signed_in_user()
        if user is None:
            yield self._sign_in_first()
            return
        if not self.enhance_key:  # this dialog's jobs are already queued: a repeated dispatch
            return
        targets, preset, key = list(self.targets), self.preset, self.enhance_key
        params = view.param_values(self.chosen.fields, self.values)
        self.enhancing = True
        yield
        try:
            groups = {p.id: p.bracket_id for p in self.photos if p.is_group}
            count = await asyncio.to_thread(view.enhance, app_context(), user.id, targets, preset, params, key, groups)
        except PaymentRequired as exc:
            self.payment_needed = str(exc)
            return
        except ServiceError as exc:
            self.error = str(exc)
            return
        finally:
            self.enhancing, self.enhance_open = False, False
        self.enhance_key = ""
        self.notice = f"{count} photo{'s' if count != 1 else ''} queued for {self.chosen.title}."
        self.selected, self.rerun_id = [], ""
        await self._refresh(user)
        yield ShootState.watch_jobs
