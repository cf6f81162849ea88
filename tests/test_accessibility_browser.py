"""Accessibility: axe-core (the npm package, injected by Playwright) finds no WCAG 2 A/AA violation
on any page, signed in and out, at desktop and phone sizes.

The pages' Content-Security-Policy allows no injected script, so the browser context bypasses it:
axe only reads the page, it changes nothing the photographer sees.
"""

from __future__ import annotations

import os
import subprocess
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from luster_app.migrations import ROOT
from tests.browser_support import chromium, served_app
from tests.conftest import unavailable
from tests.fakes.smtp_server import SmtpSink
from tests.test_webapp_browser import VIEWPORTS, Photographer, screenshots  # noqa: F401  (a fixture)

pytestmark = [pytest.mark.browser, pytest.mark.slow]

AXE = ROOT / ".tools" / "node_modules" / "axe-core" / "axe.min.js"
PHOTO = ROOT / "tests" / "data" / "photos" / "gps" / "DSCN0010.jpg"
WCAG2_A_AA = ["wcag2a", "wcag2aa"]


@pytest.fixture(scope="module")
def smtp() -> Iterator[SmtpSink]:
    with SmtpSink() as sink:
        yield sink


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("a11y")


@pytest.fixture(scope="module")
def app_url(smtp: SmtpSink, data_dir: Path) -> Iterator[str]:
    with served_app(data_dir, with_worker=True, SMTP_URL=smtp.url) as url:
        yield url


def make_admin(data_dir: Path, email: str) -> None:
    """`luster admin grant` against the served app's database, as an operator does it."""
    env = {**os.environ, "PYTHONPATH": str(ROOT), "LUSTER_ENV": "test", "LUSTER_DATA_DIR": str(data_dir),
           "DATABASE_URL": ""}
    subprocess.run([str(ROOT / ".venv" / "bin" / "luster"), "admin", "grant", email], cwd=ROOT, env=env, check=True,
                   capture_output=True)


@pytest.fixture(scope="module")
def browser() -> Iterator:
    with chromium() as browser:
        yield browser


def violations(page) -> list[str]:  # noqa: ANN001
    """axe's WCAG 2 A/AA violations on the page as it is now: "rule (impact): first element …"."""
    if not AXE.exists():
        unavailable("axe-core is not installed in .tools (run `make setup`)")
    page.wait_for_load_state("networkidle")
    page.add_script_tag(path=str(AXE))
    found = page.evaluate("tags => axe.run(document, {runOnly: {type: 'tag', values: tags}})"
                          ".then(r => r.violations.map(v => [v.id, v.impact, v.nodes.length,"
                          " v.nodes.slice(0, 3).map(n => n.target.join(' ')).join(' | ')]))", WCAG2_A_AA)
    return [f"{rule} ({impact}) ×{count}: {targets}" for rule, impact, count, targets in found]


def small_targets(page) -> list[str]:  # noqa: ANN001
    """Visible buttons (and select triggers, switches, checkboxes) less than 44 px high: too small for
    a thumb. A control inside a label is as large as its label, which a tap on works the same."""
    return page.evaluate("""() => [...document.querySelectorAll('button, [role=button], [role=combobox]')]
        .filter(e => { const r = (e.closest('label') || e).getBoundingClientRect();
                       return r.width > 0 && r.height > 0 && r.height < 43.5; })
        .map(e => `${e.id ? '#' + e.id : e.className.split(' ')[0]} "${(e.innerText || e.ariaLabel || '').trim()
                   .slice(0, 30)}" ${Math.round(e.getBoundingClientRect().height)} px`)""")


@pytest.mark.parametrize("device", list(VIEWPORTS))
def test_no_page_has_a_wcag_violation(device: str, app_url: str, data_dir: Path, smtp: SmtpSink, browser,  # noqa: ANN001
                                      screenshots: Path) -> None:  # noqa: F811
    context = browser.new_context(viewport=VIEWPORTS[device], bypass_csp=True)
    page = context.new_page()
    me = Photographer(page, app_url, smtp, screenshots, f"{device}-a11y")
    found: dict[str, list[str]] = {}

    def check(name: str, ready: str) -> None:
        page.wait_for_selector(ready)
        found[name] = violations(page)
        if device == "phone":
            found[name] += [f"touch target under 44 px: {target}" for target in small_targets(page)]

    page.goto(app_url + "/")
    check("landing", "body")
    page.goto(app_url + "/login")
    check("login", "#login-email")
    email = f"{uuid.uuid4().hex[:8]}@example.com"
    me.sign_in(email)
    check("shoots (empty)", "#shoots-empty")
    shoot_id = me.create_shoot("3 Birch Lane", "3 Birch Lane, Sacramento")
    me.upload(PHOTO)
    me.card(PHOTO.name).locator(".photo-thumb").wait_for()
    with httpx.Client(base_url=app_url, headers=me.api_headers(), timeout=60) as api:
        checkout = api.post("/api/billing/checkout", json={"pack": "starter"}).json()
        api.post(f"/api/billing/local-checkout/{checkout['session_id']}/pay")
        [photo] = api.get(f"/api/shoots/{shoot_id}/assets").json()
        job = api.post("/api/jobs", json={"asset_id": photo["id"], "preset": "sky"}).json()
        page.reload()
        me.wait_for_status(PHOTO.name, "succeeded")
        public_url = api.post(f"/api/shoots/{shoot_id}/share").json()["url"]
    page.reload()
    check("shoot", ".photo-card")
    me.card(PHOTO.name).locator(".photo-compare").click()
    check("shoot: compare", "#compare-range")
    page.click("#compare-close")
    page.goto(f"{app_url}/shoots")
    check("shoots", ".shoot-card")
    page.goto(f"{app_url}/jobs/{job['id']}")
    check("job", "#job-status")
    page.goto(f"{app_url}/billing")
    check("billing", ".ledger-row")
    page.goto(f"{app_url}/account")
    check("account", "#account-email")
    make_admin(data_dir, email)
    page.goto(f"{app_url}/admin")
    check("admin", "#admin-stats")
    page.goto(public_url)
    check("disclosure page (signed out view)", "a.original")
    context.close()

    report = {name: rules for name, rules in found.items() if rules}
    assert report == {}, "\n".join(f"{name}: {rule}" for name, rules in report.items() for rule in rules)
