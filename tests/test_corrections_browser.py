"""The correction switches in a real browser: on the enhance panel at desktop and phone sizes,
and the shoot's Auto privacy switch is where the panel's starts."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.browser_support import chromium, served_app
from tests.corrections_support import BUILDINGS
from tests.fakes.smtp_server import SmtpSink
from tests.test_webapp_browser import VIEWPORTS, Photographer

pytestmark = [pytest.mark.browser, pytest.mark.slow]

SWITCHES = ("Correct Lens", "Straighten Verticals", "Auto Privacy")


@pytest.fixture(scope="module")
def smtp() -> Iterator[SmtpSink]:
    with SmtpSink() as sink:
        yield sink


@pytest.fixture(scope="module")
def app_url(smtp: SmtpSink, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    with served_app(tmp_path_factory.mktemp("corrections"), SMTP_URL=smtp.url) as url:
        yield url


@pytest.fixture(scope="module")
def browser() -> Iterator:
    with chromium() as browser:
        yield browser


def _switch(page, title: str):  # noqa: ANN001, ANN202
    return page.locator(".preset-param", has_text=title).locator('[role="switch"]')


@pytest.mark.parametrize("device", list(VIEWPORTS))
def test_the_correction_switches_are_on_the_enhance_panel(device, app_url, smtp, browser, tmp_path: Path) -> None:  # noqa: ANN001
    context = browser.new_context(viewport=VIEWPORTS[device], is_mobile=device == "phone", has_touch=device == "phone")
    page = context.new_page()
    me = Photographer(page, app_url, smtp, tmp_path, device)
    me.sign_in(f"{device}-{uuid.uuid4().hex[:6]}@example.com")
    me.create_shoot("3 Mill Lane", "3 Mill Lane, Bath")
    me.upload(BUILDINGS)
    me.card(BUILDINGS.name).locator(".photo-thumb").wait_for()
    page.click("#select-all")

    page.click("#enhance-open")
    width = VIEWPORTS[device]["width"]
    for title in SWITCHES:
        switch = _switch(page, title)
        switch.scroll_into_view_if_needed()
        assert switch.is_visible(), f"{title} is not on the panel"
        box = switch.bounding_box()
        assert box is not None and 0 <= box["x"] and box["x"] + box["width"] <= width, f"{title} is off screen"
    # Enhance straightens by default; privacy starts from the shoot's setting (off).
    assert _switch(page, "Straighten Verticals").get_attribute("aria-checked") == "true"
    assert _switch(page, "Auto Privacy").get_attribute("aria-checked") == "false"
    page.keyboard.press("Escape")

    # The shoot's Auto privacy on: the panel's switch starts on.
    page.click("#auto-privacy-toggle")
    page.locator('#auto-privacy-toggle[aria-checked="true"]').wait_for()
    page.click("#enhance-open")
    _switch(page, "Auto Privacy").scroll_into_view_if_needed()
    assert _switch(page, "Auto Privacy").get_attribute("aria-checked") == "true"
    me.shot("enhance-corrections")
    context.close()
