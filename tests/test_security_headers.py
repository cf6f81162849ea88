"""Security headers on every answer over real HTTP: API routes, errors, signed files and downloads.

The pages of the served app, and the CSP they run under in a real browser, are in
tests/test_websec_browser.py.
"""

from __future__ import annotations

from urllib.parse import urlsplit

from fastapi.testclient import TestClient

from luster_app.api import create_api
from luster_app.api.security_headers import inline_script_hashes, page_policy
from luster_app.context import AppContext

COMMON = {"x-content-type-options": "nosniff", "x-frame-options": "DENY"}


def assert_secured(answer, *, referrer: str = "strict-origin-when-cross-origin") -> str:  # noqa: ANN001
    """The headers every answer carries; returns its CSP."""
    for name, value in COMMON.items():
        assert answer.headers.get(name) == value, f"{name} on {answer.request.url.path} ({answer.status_code})"
    assert answer.headers.get("referrer-policy") == referrer
    policy = answer.headers.get("content-security-policy", "")
    assert "frame-ancestors 'none'" in policy
    assert "strict-transport-security" not in answer.headers  # only under LUSTER_ENV=production
    return policy


def test_api_answers_and_their_errors_carry_the_headers(client, user_and_headers) -> None:
    _user, headers = user_and_headers
    ok = client.get("/api/me", headers=headers)
    assert ok.status_code == 200
    policy = assert_secured(ok)
    assert policy.startswith("default-src 'none'") and "script-src" not in policy  # JSON runs no script

    for answer, status in [
        (client.get("/api/me"), 401),
        (client.get("/api/no-such-route"), 404),
        (client.get("/api/shoots/not-a-uuid/assets", headers=headers), 422),
        (client.post("/api/shoots", headers=headers, json={"name": ""}), 422),
    ]:
        assert answer.status_code == status
        assert_secured(answer)


def test_an_unhandled_error_500_carries_the_headers(context: AppContext) -> None:
    api = create_api(context)

    @api.get("/api/explode")
    def explode() -> None:
        raise RuntimeError("boom")

    with TestClient(api, raise_server_exceptions=False) as client:
        answer = client.get("/api/explode")
    assert answer.status_code == 500
    assert_secured(answer)


def test_signed_files_and_download_links_send_no_referrer(client, context: AppContext) -> None:
    context.storage.put_bytes("outputs/a/b.jpg", b"\xff\xd8not really a jpeg", content_type="image/jpeg")
    url = urlsplit(context.storage.signed_get_url("outputs/a/b.jpg", expires_in=60, download_name="b.jpg"))
    answer = client.get(f"{url.path}?{url.query}")
    assert answer.status_code == 200 and answer.content.startswith(b"\xff\xd8")
    assert_secured(answer, referrer="no-referrer")

    tampered = client.get(f"{url.path}?{url.query}".replace("sig=", "sig=0"))
    assert tampered.status_code == 403
    assert_secured(tampered, referrer="no-referrer")

    expired_link = client.get("/api/downloads", params={"token": "x" * 40})
    assert expired_link.status_code in (403, 404)
    assert_secured(expired_link, referrer="no-referrer")


def test_the_local_checkout_page_runs_no_script(client) -> None:
    answer = client.get("/api/billing/local-checkout/cs_missing")
    policy = assert_secured(answer)
    assert "script-src" not in policy and "default-src 'none'" in policy


def test_hsts_only_in_production(context: AppContext) -> None:
    production = AppContext(context.settings.model_copy(update={"luster_env": "production"}), db=context.db)
    with TestClient(create_api(production)) as client:
        answer = client.get("/api/health")
    assert answer.headers["strict-transport-security"].startswith("max-age=31536000")
    with TestClient(create_api(context)) as client:
        assert "strict-transport-security" not in client.get("/api/health").headers


def test_page_policy_allows_the_builds_inline_scripts_by_hash_only(tmp_path, settings) -> None:
    (tmp_path / "a").mkdir()
    (tmp_path / "index.html").write_text("<script>one()</script><script src='/x.js'></script>")
    (tmp_path / "a" / "b.html").write_text("<script type=module>two()</script><script>one()</script>")
    hashes = inline_script_hashes(tmp_path)
    assert len(hashes) == 2  # one() twice counts once; the src= script needs no hash
    policy = page_policy(settings.model_copy(update={"s3_endpoint": "https://acct.r2.example.com"}), hashes)
    script_src = next(part for part in policy.split("; ") if part.startswith("script-src"))
    assert "'unsafe-inline'" not in script_src
    assert all(h in script_src for h in hashes)
    assert "https://acct.r2.example.com" in policy  # photos and uploads go straight to storage


def test_the_docs_page_has_its_own_policy(client) -> None:
    answer = client.get("/api/docs")
    assert answer.status_code == 200
    assert "https://cdn.jsdelivr.net" in assert_secured(answer)
