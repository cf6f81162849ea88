"""A closed account signs nobody in again: its access and refresh tokens are refused under the
local provider and under Supabase Auth, and its Supabase sessions on every device are revoked."""

from __future__ import annotations

from fastapi.testclient import TestClient

from tests.fakes.smtp_server import SmtpSink
from tests.redacted import bearer, redact_tokens
from tests.test_auth_local import ask_for_link, confirm, received_link, mail_client, mail_context, smtp  # noqa: F401  (fixtures)
from tests.test_auth_supabase import clock, fake, sb_client, sb_context, sb_settings, sign_in  # noqa: F401  (fixtures)


def test_a_closed_local_account_refuses_its_access_and_refresh_tokens(mail_client: TestClient, smtp: SmtpSink) -> None:
    ask_for_link(mail_client, "leaving@example.com")
    tokens = redact_tokens(confirm(mail_client, received_link(smtp, "leaving@example.com")["token"]).json())
    assert mail_client.delete("/api/me", headers=bearer(tokens["access_token"])).status_code == 200

    me = mail_client.get("/api/me", headers=bearer(tokens["access_token"]))
    assert me.status_code == 401 and "closed" in me.json()["detail"]
    refreshed = mail_client.post("/api/auth/refresh", json={"refresh_token": tokens["refresh_token"]})
    assert refreshed.status_code == 401
    # A new link to the same address opens a new, empty account, not the closed one.
    ask_for_link(mail_client, "leaving@example.com")
    fresh = redact_tokens(confirm(mail_client, received_link(smtp, "leaving@example.com")["token"]).json())
    assert fresh["user"]["id"] != tokens["user"]["id"]
    assert mail_client.get("/api/shoots", headers=bearer(fresh["access_token"])).json() == []


def test_closing_a_supabase_account_revokes_every_session_and_refuses_its_jwts(fake, sb_client: TestClient) -> None:  # noqa: ANN001
    phone = sign_in(fake, sb_client, "two-devices@example.com")
    laptop = sign_in(fake, sb_client, "two-devices@example.com")
    assert sb_client.delete("/api/me", headers=bearer(laptop["access_token"])).status_code == 200

    for device in (phone, laptop):
        me = sb_client.get("/api/me", headers=bearer(device["access_token"]))
        assert me.status_code == 401 and "closed" in me.json()["detail"]
        assert sb_client.post("/api/auth/refresh", json={"refresh_token": device["refresh_token"]}).status_code == 401
    # Revoked at Supabase too, not only refused here: the phone's refresh token is dead at the source.
    assert fake.logouts == [laptop["user"]["id"]]
    assert all(refresh.revoked for refresh in fake._refresh.values())
    # A JWT Supabase mints later for the same sub is refused as well.
    later = fake.mint_access_token(sub=phone["user"]["id"], email="two-devices@example.com")
    assert sb_client.get("/api/shoots", headers=bearer(later)).status_code == 401
