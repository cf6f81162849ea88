"""Sign-in links work only in the browser that asked for them (login CSRF), on both providers.

These drive the services the confirm page calls, on the real database, the SMTP sink and the
Supabase peer; tests/test_websec_browser.py does the same in a real browser.
"""

from __future__ import annotations

import pytest

from luster_app.auth import AuthError
from luster_app.auth.supabase import SupabaseAuth
from luster_app.config import Settings
from luster_app.context import AppContext
from luster_app.db import make_engine
from luster_app.services import auth as auth_service
from luster_app.services.auth import OtherBrowser
from tests.fakes.smtp_server import SmtpSink
from tests.fakes.supabase_server import FakeSupabase
from tests.test_auth_local import received_link


@pytest.fixture
def smtp():
    with SmtpSink() as sink:
        yield sink


@pytest.fixture
def local(settings: Settings, db_url: str, smtp: SmtpSink):
    ctx = AppContext(settings.model_copy(update={"smtp_url": smtp.url}), db=make_engine(db_url))
    yield ctx
    ctx.db.dispose()


@pytest.fixture
def fake():
    with FakeSupabase() as server:
        yield server


@pytest.fixture
def supabase(settings: Settings, sqlite_url: str, fake: FakeSupabase):
    sb_settings = settings.model_copy(update={"supabase_url": fake.url, "supabase_anon_key": fake.anon_key})
    ctx = AppContext(sb_settings, db=make_engine(sqlite_url), auth=SupabaseAuth(settings=sb_settings))
    yield ctx
    ctx.db.dispose()


def request_link(context: AppContext, email: str, browser_nonce: str | None) -> None:
    with context.session() as session:
        auth_service.request_magic_link(session=session, auth=context.auth, settings=context.settings, email=email,
                                        client_address="203.0.113.9", next_path="/shoots", browser_nonce=browser_nonce)


def check(context: AppContext, token: str, browser_nonce: str, link_type: str = "magiclink") -> str:
    with context.session() as session:
        return auth_service.check_browser_link(session=session, auth=context.auth, token=token, link_type=link_type,
                                               browser_nonce=browser_nonce)


def confirm(context: AppContext, token: str, browser_nonce: str, link_type: str = "magiclink"):  # noqa: ANN201
    with context.session() as session:
        return auth_service.confirm_browser_link(session=session, auth=context.auth, token=token,
                                                 link_type=link_type, browser_nonce=browser_nonce)


def test_a_local_link_names_its_account_and_signs_in_only_the_browser_that_asked(local, smtp) -> None:
    asking, other = auth_service.new_browser_nonce(), auth_service.new_browser_nonce()
    request_link(local, "Owner@Example.com", asking)
    token = received_link(smtp, "owner@example.com")["token"]

    # Another browser (or one with no cookie) is refused, told whose link it is, and uses nothing up.
    for browser in (other, ""):
        with pytest.raises(OtherBrowser) as refused:
            confirm(local, token, browser)
        assert refused.value.email == "owner@example.com"
        assert "another browser" in str(refused.value)

    assert check(local, token, asking) == "owner@example.com"  # what the confirm page names
    signed_in = confirm(local, token, asking)
    assert signed_in.user.email == "owner@example.com" and signed_in.tokens is not None
    with pytest.raises(AuthError, match="already used"):
        confirm(local, token, asking)


def test_an_attackers_link_does_not_sign_in_a_browser_that_asked_for_its_own(local, smtp) -> None:
    victim, attacker = auth_service.new_browser_nonce(), auth_service.new_browser_nonce()
    request_link(local, "victim@example.com", victim)
    request_link(local, "attacker@example.com", attacker)
    attackers_link = received_link(smtp, "attacker@example.com")["token"]
    with pytest.raises(OtherBrowser):
        confirm(local, attackers_link, victim)
    # The refusal used nothing: the attacker's own browser still can (the link was not burnt).
    assert confirm(local, attackers_link, attacker).user.email == "attacker@example.com"


def test_a_link_asked_for_over_the_api_is_bound_to_no_browser(local, smtp) -> None:
    request_link(local, "api@example.com", None)
    with pytest.raises(OtherBrowser):
        check(local, received_link(smtp, "api@example.com")["token"], auth_service.new_browser_nonce())


def test_supabase_link_of_another_account_is_used_but_its_session_ended_not_handed_over(supabase, fake) -> None:
    """GoTrue names a link's account only by using it: the browser's account is checked after, and a
    session for anyone else is signed out at Supabase instead of reaching this browser."""
    victim, attacker = auth_service.new_browser_nonce(), auth_service.new_browser_nonce()
    request_link(supabase, "victim@example.com", victim)
    request_link(supabase, "attacker@example.com", attacker)
    attackers_link = fake.otp_requests[-1].token_hash

    assert check(supabase, attackers_link, victim) == "victim@example.com"  # what this browser asked for
    with pytest.raises(OtherBrowser):
        confirm(supabase, attackers_link, victim)
    assert fake.logouts == [fake.users["attacker@example.com"]]

    with pytest.raises(OtherBrowser):  # a browser that asked for nothing never reaches Supabase
        check(supabase, fake.otp_requests[0].token_hash, auth_service.new_browser_nonce())
    signed_in = confirm(supabase, fake.otp_requests[0].token_hash, victim)
    assert signed_in.user.email == "victim@example.com"


def test_a_browser_that_asked_for_two_accounts_can_use_either_link_named_right(local, smtp) -> None:
    browser = auth_service.new_browser_nonce()
    request_link(local, "first@example.com", browser)
    request_link(local, "second@example.com", browser)
    first = received_link(smtp, "first@example.com")["token"]
    assert check(local, first, browser) == "first@example.com"
    assert confirm(local, first, browser).user.email == "first@example.com"
