"""The embedded provider's magic links: emailed by SMTP, single use, expiring, unguessable, rate limited."""

from __future__ import annotations

import logging
import os
import re
import socket
import subprocess
import sys
import threading
from datetime import timedelta
from urllib.parse import parse_qs, urlsplit

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select, update

from luster_app.api import create_api
from luster_app.auth import AuthConfigError, build_auth
from luster_app.auth.local import LocalAuth, hash_link_token
from luster_app.config import Settings
from luster_app.context import AppContext
from luster_app.db import make_engine
from luster_app.logging import configure_logging
from luster_app.migrations import ROOT
from luster_app.models import Credits, MagicLink, User, utcnow
from tests.conftest import make_user
from tests.fakes.smtp_server import SmtpSink
from tests.redacted import Redacted, bearer, redact_tokens

LINK = re.compile(r"https?://\S+")


@pytest.fixture
def smtp():
    with SmtpSink() as sink:
        yield sink


@pytest.fixture
def mail_context(settings: Settings, db_url: str, smtp: SmtpSink):
    ctx = AppContext(settings.model_copy(update={"smtp_url": smtp.url}), db=make_engine(db_url))
    yield ctx
    ctx.db.dispose()


@pytest.fixture
def mail_client(mail_context: AppContext):
    with TestClient(create_api(mail_context)) as client:
        yield client


def ask_for_link(client: TestClient, email: str, next_path: str | None = None):
    return client.post("/api/auth/magic-link", json={"email": email, "next": next_path})


def received_link(smtp: SmtpSink, email: str) -> dict[str, str]:
    """The query of the sign-in link in the latest message to `email` (with `url` = the link minus query)."""
    messages = [m for m in smtp.inbox if m["To"] == email]
    assert messages, "no sign-in email arrived"
    match = LINK.search(messages[-1].get_payload(decode=True).decode())
    assert match is not None, "the sign-in email has no link"
    link = urlsplit(match.group(0))
    query = {k: Redacted(v[0]) if k == "token" else v[0] for k, v in parse_qs(link.query).items()}
    return {"url": f"{link.scheme}://{link.netloc}{link.path}", **query}


def confirm(client: TestClient, token: str):
    return client.post("/api/auth/confirm", json={"token": token})


def test_emailed_link_signs_a_new_photographer_in_with_zero_credits(mail_client, smtp) -> None:
    answer = ask_for_link(mail_client, "New.Person@Example.com", "/shoots/abc?tab=outputs")
    assert answer.status_code == 202
    link = received_link(smtp, "new.person@example.com")
    assert link["url"] == "http://testserver/auth/confirm"
    assert link["next"] == "/shoots/abc?tab=outputs"

    signed_in = confirm(mail_client, link["token"])
    assert signed_in.status_code == 200
    body = redact_tokens(signed_in.json())
    assert body["user"]["email"] == "new.person@example.com"
    assert body["next"] == "/shoots/abc?tab=outputs"
    me = mail_client.get("/api/me", headers=bearer(body["access_token"]))
    assert me.status_code == 200
    assert me.json()["id"] == body["user"]["id"]
    assert me.json()["credits"] == {"balance": 0, "reserved": 0, "available": 0}


def test_link_of_an_existing_user_signs_into_the_same_account(mail_client, mail_context, smtp) -> None:
    user, _headers = make_user(mail_context, "known@example.com")
    ask_for_link(mail_client, "known@example.com")
    body = confirm(mail_client, received_link(smtp, "known@example.com")["token"]).json()
    assert body["user"]["id"] == str(user.id)


def test_link_works_only_once(mail_client, smtp) -> None:
    ask_for_link(mail_client, "once@example.com")
    token = received_link(smtp, "once@example.com")["token"]
    assert confirm(mail_client, token).status_code == 200
    replay = confirm(mail_client, token)
    assert replay.status_code == 401
    assert "already used" in replay.json()["detail"]


def test_two_clicks_at_once_sign_in_only_one(mail_client, smtp) -> None:
    ask_for_link(mail_client, "double@example.com")
    token = received_link(smtp, "double@example.com")["token"]
    statuses: list[int] = []
    start = threading.Barrier(2)

    def click() -> None:
        start.wait()
        statuses.append(confirm(mail_client, token).status_code)

    threads = [threading.Thread(target=click) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(statuses) == [200, 401]


def test_expired_link_is_refused(mail_client, mail_context, smtp) -> None:
    ask_for_link(mail_client, "late@example.com")
    token = received_link(smtp, "late@example.com")["token"]
    with mail_context.session() as session:
        # What 31 minutes of waiting does to the row.
        session.execute(update(MagicLink).values(expires_at=utcnow() - timedelta(minutes=1)))
        session.commit()
    assert confirm(mail_client, token).status_code == 401


def test_links_expire_after_thirty_minutes(mail_client, mail_context, smtp) -> None:
    ask_for_link(mail_client, "ttl@example.com")
    with mail_context.session() as session:
        link = session.execute(select(MagicLink)).scalars().one()
    assert timedelta(minutes=29) < link.expires_at - link.created_at <= timedelta(minutes=30)


def test_guessed_or_leaked_tokens_sign_nobody_in(mail_client, mail_context, smtp) -> None:
    ask_for_link(mail_client, "target@example.com")
    token = received_link(smtp, "target@example.com")["token"]
    with mail_context.session() as session:
        stored = session.execute(select(MagicLink.token_hash)).scalar_one()
    assert stored == hash_link_token(token)
    assert len(token) >= 43  # 256 random bits
    for guess in ("", "a" * 43, Redacted(token[:-1]), stored):  # the DB's hash is not a token either
        assert confirm(mail_client, guess).status_code == 401
    assert confirm(mail_client, token).status_code == 200


def test_known_and_unknown_addresses_get_the_same_answer(mail_client, mail_context, smtp) -> None:
    make_user(mail_context, "member@example.com")
    known = ask_for_link(mail_client, "member@example.com")
    unknown = ask_for_link(mail_client, "stranger@example.com")
    assert (known.status_code, known.json()) == (unknown.status_code, unknown.json())


def test_links_per_email_are_rate_limited(mail_client, mail_context, smtp) -> None:
    limit = mail_context.settings.magic_link_limit_per_email
    for _ in range(limit):
        assert ask_for_link(mail_client, "flood@example.com").status_code == 202
    refused = ask_for_link(mail_client, "FLOOD@example.com")
    assert refused.status_code == 429
    assert "Too many sign-in links for this email" in refused.json()["detail"]
    assert int(refused.headers["Retry-After"]) > 0
    assert len([m for m in smtp.inbox if m["To"] == "flood@example.com"]) == limit
    assert ask_for_link(mail_client, "someone-else@example.com").status_code == 202


@pytest.mark.parametrize(
    "variant",
    ["<flood@example.com>", "flood@example.com(2)", "(x)flood@example.com", '"flood"@example.com',
     "flood@example.com;x", "flood@example.com,", "=?utf-8?q?flood?=@example.com"],
)
def test_spellings_of_the_same_mailbox_cannot_dodge_the_per_email_limit(variant, mail_client, mail_context, smtp) -> None:
    limit = mail_context.settings.magic_link_limit_per_email
    for _ in range(limit):
        assert ask_for_link(mail_client, "flood@example.com").status_code == 202
    answer = ask_for_link(mail_client, variant)
    assert smtp.recipients.count("flood@example.com") == limit
    assert answer.status_code in (422, 429)


def test_a_burst_of_concurrent_requests_gets_no_more_links_than_the_limit(mail_client, mail_context, smtp) -> None:
    limit = mail_context.settings.magic_link_limit_per_email
    racers = 4 * limit
    start = threading.Barrier(racers)
    statuses: list[int] = []

    def ask() -> None:
        start.wait()
        statuses.append(ask_for_link(mail_client, "burst@example.com").status_code)

    threads = [threading.Thread(target=ask) for _ in range(racers)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert smtp.recipients.count("burst@example.com") == limit
    assert sorted(statuses) == [202] * limit + [429] * (racers - limit)


def test_links_per_client_address_are_rate_limited(settings, sqlite_url, smtp) -> None:
    limited = settings.model_copy(update={"smtp_url": smtp.url, "magic_link_limit_per_address": 3})
    with TestClient(create_api(AppContext(limited, db=make_engine(sqlite_url)))) as client:
        for n in range(3):
            assert ask_for_link(client, f"user{n}@example.com").status_code == 202
        refused = ask_for_link(client, "user3@example.com")
    assert refused.status_code == 429
    assert "from your network" in refused.json()["detail"]
    assert len(smtp.inbox) == 3


def test_not_an_email_address_is_422(mail_client, smtp) -> None:
    answer = ask_for_link(mail_client, "not an email")
    assert answer.status_code == 422
    assert answer.json()["detail"] == "Enter a valid email address."
    assert smtp.inbox == []


def test_next_must_stay_on_this_site(mail_client, smtp) -> None:
    ask_for_link(mail_client, "next@example.com", "https://evil.example/phish")
    assert received_link(smtp, "next@example.com")["next"] == "/shoots"


def test_refresh_token_keeps_a_user_signed_in(mail_client, smtp) -> None:
    ask_for_link(mail_client, "stay@example.com")
    first = redact_tokens(confirm(mail_client, received_link(smtp, "stay@example.com")["token"]).json())
    refreshed = mail_client.post("/api/auth/refresh", json={"refresh_token": first["refresh_token"]})
    assert refreshed.status_code == 200
    assert refreshed.json()["user"] == first["user"]
    me = mail_client.get("/api/me", headers=bearer(refreshed.json()["access_token"]))
    assert me.status_code == 200
    # Neither token passes for the other.
    assert mail_client.get("/api/me", headers=bearer(first["refresh_token"])).status_code == 401
    assert mail_client.post("/api/auth/refresh", json={"refresh_token": first["access_token"]}).status_code == 401


def test_without_smtp_the_link_is_printed_only_in_development_and_never_logged(settings, sqlite_url, caplog, capfd) -> None:
    caplog.set_level(logging.DEBUG)
    for env, expect_link in (("development", True), ("test", False)):
        caplog.clear()
        ctx = AppContext(settings.model_copy(update={"luster_env": env}), db=make_engine(sqlite_url))
        with TestClient(create_api(ctx)) as client:
            assert ask_for_link(client, f"{env}@example.com").status_code == 202
        printed = capfd.readouterr()  # consumed, so the link never shows in a test report
        link_printed = "http://testserver/auth/confirm?token=" in printed.err
        assert link_printed is expect_link, f"LUSTER_ENV={env}: link printed={link_printed}"
        assert "token=" not in caplog.text
        assert f"{env}@example.com" in caplog.text


def test_without_smtp_a_developer_signs_in_with_the_link_the_server_prints(settings, sqlite_url, capfd) -> None:
    development = settings.model_copy(update={"luster_env": "development"})
    root = logging.getLogger()
    level = root.level
    handler = configure_logging(development)  # what the app does at startup: redacting handler on stdout
    try:
        with TestClient(create_api(AppContext(development, db=make_engine(sqlite_url)))) as client:
            assert ask_for_link(client, "dev@example.com").status_code == 202
            printed = capfd.readouterr()  # consumed, so the link never shows in a test report
            links = [Redacted(link) for link in LINK.findall(printed.out + printed.err) if "token=" in link]
            assert links, "the server printed no usable sign-in link"
            token = parse_qs(urlsplit(links[-1]).query)["token"][0]
            assert confirm(client, Redacted(token)).status_code == 200
    finally:
        root.removeHandler(handler)
        root.setLevel(level)


def test_local_provider_refuses_production(settings, sqlite_url) -> None:
    production = settings.model_copy(update={"luster_env": "production"})
    with pytest.raises(AuthConfigError, match="LUSTER_ENV=production") as refused:
        build_auth(production, make_engine(sqlite_url))
    assert "SUPABASE_URL" in str(refused.value)


def test_luster_token_prints_a_working_token_for_a_new_or_known_user(settings, sqlite_url) -> None:
    env = {
        **os.environ,
        "PYTHONPATH": str(ROOT),
        "DATABASE_URL": sqlite_url,
        "LUSTER_DATA_DIR": str(settings.luster_data_dir),
        "LUSTER_ENV": "test",
        "SUPABASE_URL": "",
    }
    tokens = [
        subprocess.run(
            [sys.executable, "-m", "luster_app.cli", "token", "cli@example.com"],
            cwd=ROOT, env=env, capture_output=True, text=True, check=True,
        ).stdout.strip()
        for _ in range(2)
    ]
    engine = make_engine(sqlite_url)
    identities = [LocalAuth(settings=settings, db=engine).verify_access_token(t) for t in tokens]
    assert identities[0] == identities[1]
    assert identities[0].email == "cli@example.com"
    with AppContext(settings, db=engine).session() as session:
        assert session.execute(select(func.count()).select_from(User)).scalar_one() == 1
        assert session.get(Credits, identities[0].user_id).balance == 0


def test_behind_a_trusted_proxy_each_client_address_has_its_own_limit(settings, sqlite_url, smtp) -> None:
    def run(hops: int) -> list[int]:
        limited = settings.model_copy(
            update={"smtp_url": smtp.url, "magic_link_limit_per_address": 1, "trusted_proxy_hops": hops}
        )
        with TestClient(create_api(AppContext(limited, db=make_engine(sqlite_url)))) as client:
            return [
                client.post("/api/auth/magic-link", json={"email": f"h{hops}-{n}@example.com"},
                            headers={"X-Forwarded-For": f"203.0.113.{n}, 10.0.0.1"}).status_code
                for n in range(2)
            ]

    assert run(2) == [202, 202]  # two real clients behind two proxies
    assert run(0) == [202, 429]  # no trusted proxy: a client cannot dodge the limit with the header


def test_one_ipv6_network_shares_one_client_address_limit(settings, sqlite_url, smtp) -> None:
    limited = settings.model_copy(
        update={"smtp_url": smtp.url, "magic_link_limit_per_address": 1, "trusted_proxy_hops": 1}
    )
    with TestClient(create_api(AppContext(limited, db=make_engine(sqlite_url)))) as client:
        statuses = [
            client.post("/api/auth/magic-link", json={"email": f"v6-{n}@example.com"},
                        headers={"X-Forwarded-For": address}).status_code
            # A home connection gets a whole /64: its addresses are one client, not 2**64.
            for n, address in enumerate(["2001:db8:1:2::1", "2001:db8:1:2:ffff::9", "2001:db8:1:3::1"])
        ]
    assert statuses == [202, 429, 202]


def test_unreachable_smtp_server_is_503_and_says_to_retry(settings, sqlite_url) -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        closed_port = sock.getsockname()[1]
    broken = settings.model_copy(update={"smtp_url": f"smtp://127.0.0.1:{closed_port}"})
    with TestClient(create_api(AppContext(broken, db=make_engine(sqlite_url)))) as client:
        answer = ask_for_link(client, "mail-down@example.com")
    assert answer.status_code == 503
    assert "try again" in answer.json()["detail"]
