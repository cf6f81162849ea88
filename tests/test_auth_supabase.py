"""Supabase Auth through a local server that speaks its REST API: links, tokens, JWKS rotation."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import socket
import threading
import time
import uuid

import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import ec
from fastapi.testclient import TestClient
from sqlalchemy import func, select

from luster_app.api import create_api
from luster_app.auth import AuthConfigError, build_auth
from luster_app.auth.local import LocalAuth
from luster_app.auth.supabase import SupabaseAuth
from luster_app.config import Settings
from luster_app.context import AppContext
from luster_app.db import make_engine
from luster_app.models import User
from luster_app.services.users import ensure_user
from tests.fakes.supabase_server import FakeSupabase
from tests.redacted import Redacted, bearer, redact_tokens


class FakeClock:
    """A monotonic clock the test moves by hand, so cooldowns need no sleeping."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


@pytest.fixture
def fake():
    with FakeSupabase() as server:
        yield server


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def sb_settings(settings: Settings, fake: FakeSupabase) -> Settings:
    return settings.model_copy(update={"supabase_url": fake.url, "supabase_anon_key": fake.anon_key})


@pytest.fixture
def sb_context(sb_settings: Settings, sqlite_url: str, clock: FakeClock):
    ctx = AppContext(sb_settings, db=make_engine(sqlite_url), auth=SupabaseAuth(settings=sb_settings, clock=clock))
    yield ctx
    ctx.db.dispose()


@pytest.fixture
def sb_client(sb_context: AppContext):
    with TestClient(create_api(sb_context)) as client:
        yield client


def me(client: TestClient, token: str):
    return client.get("/api/me", headers=bearer(token))


def user_count(context: AppContext) -> int:
    with context.session() as session:
        return session.execute(select(func.count()).select_from(User)).scalar_one()


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def hand_made_token(header: dict, claims: dict, sign: callable) -> str:
    """A JWT built byte by byte, for algorithms PyJWT rightly refuses to produce."""
    signing_input = f"{_b64(json.dumps(header).encode())}.{_b64(json.dumps(claims).encode())}"
    return Redacted(f"{signing_input}.{_b64(sign(signing_input.encode()))}")


def good_claims(fake: FakeSupabase, **changes) -> dict:
    now = int(time.time())
    claims = {"aud": "authenticated", "exp": now + 3600, "iat": now, "iss": fake.issuer, "sub": str(uuid.uuid4()),
              "email": "attacker@example.com", "role": "authenticated"}
    return {**claims, **changes}


# --- choosing the provider ---

def test_supabase_is_chosen_when_supabase_url_is_set(sb_settings, settings, sqlite_url) -> None:
    engine = make_engine(sqlite_url)
    assert isinstance(build_auth(sb_settings, engine), SupabaseAuth)
    assert isinstance(build_auth(settings, engine), LocalAuth)
    # Production with Supabase configured is fine; the local provider is what refuses it.
    assert isinstance(build_auth(sb_settings.model_copy(update={"luster_env": "production"}), engine), SupabaseAuth)


def test_supabase_without_anon_key_refuses_to_start(sb_settings, sqlite_url) -> None:
    with pytest.raises(AuthConfigError, match="SUPABASE_ANON_KEY"):
        build_auth(sb_settings.model_copy(update={"supabase_anon_key": ""}), make_engine(sqlite_url))


# --- verifying access tokens ---

def test_supabase_token_signs_in_and_first_request_creates_user_with_zero_credits(fake, sb_client) -> None:
    user_id = str(uuid.uuid4())
    answer = me(sb_client, fake.mint_access_token(sub=user_id, email="Pro@Example.com"))
    assert answer.status_code == 200
    assert answer.json() == {
        "id": user_id,
        "email": "pro@example.com",
        "is_admin": False,
        "credits": {"balance": 0, "reserved": 0, "available": 0},
    }


REJECTED = {
    "alg none": lambda f: hand_made_token({"alg": "none", "typ": "JWT"}, good_claims(f), lambda _m: b""),
    "HS256 signed with the public key": lambda f: hand_made_token(
        {"alg": "HS256", "typ": "JWT", "kid": f.current_kid},
        good_claims(f),
        lambda m: hmac.new(f.public_key_pem(), m, hashlib.sha256).digest(),
    ),
    "the anon key": lambda f: f.anon_key,
    "aud other than authenticated": lambda f: f.mint_access_token(sub=str(uuid.uuid4()), email="a@example.com", aud="anon"),
    "wrong iss": lambda f: f.mint_access_token(sub=str(uuid.uuid4()), email="a@example.com", iss="https://other.supabase.co/auth/v1"),
    "expired beyond leeway": lambda f: f.mint_access_token(sub=str(uuid.uuid4()), email="a@example.com", expires_in=-120),
    "no sub": lambda f: f.mint_access_token(sub=None, email="a@example.com"),
    "kid not in the JWKS": lambda f: Redacted(jwt.encode(
        good_claims(f), f.keys[f.current_kid], algorithm="ES256", headers={"kid": "not-published"}
    )),
    "signed by a key that is not the project's": lambda f: Redacted(jwt.encode(
        good_claims(f), ec.generate_private_key(ec.SECP256R1()), algorithm="ES256", headers={"kid": f.current_kid}
    )),
}


@pytest.mark.parametrize("case", list(REJECTED))
def test_bad_tokens_are_401_and_create_nobody(case, fake, sb_client, sb_context) -> None:
    answer = me(sb_client, REJECTED[case](fake))
    assert answer.status_code == 401
    assert answer.headers["WWW-Authenticate"] == "Bearer"
    assert user_count(sb_context) == 0


def test_expired_within_leeway_still_passes(fake, sb_client) -> None:
    assert me(sb_client, fake.mint_access_token(sub=str(uuid.uuid4()), email="a@example.com", expires_in=-5)).status_code == 200


def test_legacy_hs256_tokens_pass_only_when_the_secret_is_configured(fake, sb_settings, sqlite_url) -> None:
    token = Redacted(jwt.encode(good_claims(fake), fake.jwt_secret, algorithm="HS256"))
    for secret, expected in (("", 401), (fake.jwt_secret, 200)):
        configured = sb_settings.model_copy(update={"supabase_jwt_secret": secret})
        with TestClient(create_api(AppContext(configured, db=make_engine(sqlite_url)))) as client:
            assert me(client, token).status_code == expected
            # The anon key is signed with that very secret, yet it is no user's token.
            assert me(client, fake.anon_key).status_code == 401


# --- the JWKS cache ---

def test_rotated_key_is_picked_up_and_unknown_kids_do_not_hammer_the_jwks(fake, sb_client, clock) -> None:
    assert me(sb_client, fake.mint_access_token(sub=str(uuid.uuid4()), email="a@example.com")).status_code == 200
    assert fake.jwks_requests == 1

    clock.advance(31)
    fake.rotate_key()
    rotated = fake.mint_access_token(sub=str(uuid.uuid4()), email="b@example.com")
    assert me(sb_client, rotated).status_code == 200
    assert fake.jwks_requests == 2

    def junk() -> str:
        return Redacted(jwt.encode(good_claims(fake), fake.keys[fake.current_kid], algorithm="ES256",
                                   headers={"kid": str(uuid.uuid4())}))

    results: list[int] = []
    def flood() -> None:
        results.extend(me(sb_client, junk()).status_code for _ in range(15))

    threads = [threading.Thread(target=flood) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert results == [401] * 60
    assert fake.jwks_requests == 2  # within the cooldown: not one more request

    clock.advance(31)
    for _ in range(20):
        assert me(sb_client, junk()).status_code == 401
    assert fake.jwks_requests == 3  # one refetch per cooldown, however many unknown kids
    assert me(sb_client, rotated).status_code == 200


def test_revoked_key_stops_working_once_the_cache_expires(fake, sb_client, clock) -> None:
    old = fake.mint_access_token(sub=str(uuid.uuid4()), email="a@example.com")
    assert me(sb_client, old).status_code == 200
    fake.rotate_key(revoke_previous=True)
    assert me(sb_client, old).status_code == 200  # still cached
    clock.advance(601)
    assert me(sb_client, old).status_code == 401
    assert me(sb_client, fake.mint_access_token(sub=str(uuid.uuid4()), email="b@example.com")).status_code == 200


def test_unreachable_jwks_is_503_not_401(sb_settings, sqlite_url) -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        closed_port = sock.getsockname()[1]
    broken = sb_settings.model_copy(update={"supabase_jwks_url": f"http://127.0.0.1:{closed_port}/jwks.json"})
    with TestClient(create_api(AppContext(broken, db=make_engine(sqlite_url)))) as client:
        answer = me(client, "eyJhbGciOiJFUzI1NiIsImtpZCI6ImsifQ.e30.c2ln")
    assert answer.status_code == 503


def test_jwks_outage_before_any_key_arrived_stays_503(fake, sb_settings, sqlite_url, clock) -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        closed_port = sock.getsockname()[1]
    broken = sb_settings.model_copy(update={"supabase_jwks_url": f"http://127.0.0.1:{closed_port}/jwks.json"})
    context = AppContext(broken, db=make_engine(sqlite_url), auth=SupabaseAuth(settings=broken, clock=clock))
    token = fake.mint_access_token(sub=str(uuid.uuid4()), email="a@example.com")
    with TestClient(create_api(context)) as client:
        # Within the refetch cooldown too: a valid token is never called invalid (which signs browsers out).
        assert [me(client, token).status_code for _ in range(3)] == [503, 503, 503]


# --- magic links and sessions ---

def sign_in(fake: FakeSupabase, client: TestClient, email: str) -> dict:
    assert client.post("/api/auth/magic-link", json={"email": email}).status_code == 202
    token_hash = fake.otp_requests[-1].token_hash
    answer = client.post("/api/auth/confirm", json={"token_hash": token_hash, "type": "magiclink"})
    assert answer.status_code == 200
    return redact_tokens(answer.json())


def test_magic_link_through_supabase_signs_in_and_creates_the_user(fake, sb_client, sb_context) -> None:
    answer = sb_client.post("/api/auth/magic-link", json={"email": "Agent@Example.com", "next": "/shoots/42"})
    assert answer.status_code == 202
    request = fake.otp_requests[-1]
    assert request.email == "agent@example.com"
    assert request.body["create_user"] is True
    assert request.redirect_to == "http://testserver/auth/confirm?next=%2Fshoots%2F42"

    confirmed = sb_client.post("/api/auth/confirm", json={"token_hash": request.token_hash, "type": "magiclink"})
    assert confirmed.status_code == 200
    body = redact_tokens(confirmed.json())
    assert body["user"] == {"id": fake.users["agent@example.com"], "email": "agent@example.com"}
    profile = me(sb_client, body["access_token"])
    assert profile.status_code == 200
    assert profile.json()["credits"] == {"balance": 0, "reserved": 0, "available": 0}
    assert user_count(sb_context) == 1

    replay = sb_client.post("/api/auth/confirm", json={"token_hash": request.token_hash, "type": "magiclink"})
    assert replay.status_code == 401


def test_expired_supabase_link_is_401(fake, sb_client) -> None:
    sb_client.post("/api/auth/magic-link", json={"email": "slow@example.com"})
    fake.expire_links()
    answer = sb_client.post("/api/auth/confirm", json={"token_hash": fake.otp_requests[-1].token_hash})
    assert answer.status_code == 401
    assert "expired" in answer.json()["detail"]


def test_refresh_keeps_a_user_signed_in(fake, sb_client) -> None:
    first = sign_in(fake, sb_client, "tabs@example.com")
    answer = sb_client.post("/api/auth/refresh", json={"refresh_token": first["refresh_token"]})
    assert answer.status_code == 200
    refreshed = redact_tokens(answer.json())
    assert not same_token(refreshed["refresh_token"], first["refresh_token"])  # Supabase rotates it
    assert me(sb_client, refreshed["access_token"]).status_code == 200
    assert sb_client.post("/api/auth/refresh", json={"refresh_token": "never-issued"}).status_code == 401


def test_a_rotated_refresh_token_presented_again_is_refused_and_ends_the_session(fake, sb_client) -> None:
    """Whoever presents an old refresh token (a thief's copy) gets nothing, and Supabase sees the reuse."""
    fake.reuse_interval_seconds = 0  # past GoTrue's reuse interval
    first = sign_in(fake, sb_client, "stolen@example.com")
    refreshed = redact_tokens(sb_client.post("/api/auth/refresh", json={"refresh_token": first["refresh_token"]}).json())
    answer = sb_client.post("/api/auth/refresh", json={"refresh_token": first["refresh_token"]})
    assert answer.status_code == 401
    assert "access_token" not in answer.json()
    assert fake.reuse_detections == 1
    # Reuse detection revoked the whole session, so a thief who refreshed first is locked out too.
    assert sb_client.post("/api/auth/refresh", json={"refresh_token": refreshed["refresh_token"]}).status_code == 401


def test_two_tabs_refreshing_at_once_both_stay_signed_in(fake, sb_client) -> None:
    """Two tabs presenting the same token together: Supabase's reuse interval (not a cache of ours)
    gives the second one the session's current token, so neither tab is signed out."""
    fake.reuse_interval_seconds = 3600  # "at once", however slow this machine is
    first = sign_in(fake, sb_client, "two-tabs@example.com")
    answers = [sb_client.post("/api/auth/refresh", json={"refresh_token": first["refresh_token"]}) for _ in range(2)]
    assert [answer.status_code for answer in answers] == [200, 200]
    assert same_token(answers[0].json()["refresh_token"], answers[1].json()["refresh_token"])
    assert fake.reuse_detections == 0
    assert me(sb_client, answers[1].json()["access_token"]).status_code == 200


def same_token(a: str, b: str) -> bool:
    """Compare tokens without letting pytest print them."""
    return a == b


def test_sign_out_revokes_the_session_at_supabase(fake, sb_client) -> None:
    session = sign_in(fake, sb_client, "bye@example.com")
    answer = sb_client.post("/api/auth/logout", headers=bearer(session["access_token"]))
    assert answer.status_code == 204
    assert fake.logouts == [session["user"]["id"]]
    assert sb_client.post("/api/auth/refresh", json={"refresh_token": session["refresh_token"]}).status_code == 401


def test_sign_out_also_ends_a_session_another_tab_refreshed(fake, sb_client) -> None:
    session = sign_in(fake, sb_client, "tabs-out@example.com")
    answer = sb_client.post("/api/auth/refresh", json={"refresh_token": session["refresh_token"]})
    refreshed = redact_tokens(answer.json())
    assert sb_client.post("/api/auth/logout", headers=bearer(refreshed["access_token"])).status_code == 204
    # After sign-out neither the old nor the current refresh token brings the session back.
    assert sb_client.post("/api/auth/refresh", json={"refresh_token": session["refresh_token"]}).status_code == 401
    assert sb_client.post("/api/auth/refresh", json={"refresh_token": refreshed["refresh_token"]}).status_code == 401


def test_wrong_anon_key_is_an_outage_not_a_silent_success(fake, sb_settings, sqlite_url) -> None:
    wrong = sb_settings.model_copy(update={"supabase_anon_key": "wrong-key"})
    with TestClient(create_api(AppContext(wrong, db=make_engine(sqlite_url)))) as client:
        answer = client.post("/api/auth/magic-link", json={"email": "a@example.com"})
    assert answer.status_code == 503
    assert fake.otp_requests == []


def test_email_of_another_account_is_409_not_a_takeover(fake, sb_client, sb_context) -> None:
    with sb_context.session() as session:  # signed up earlier, e.g. under the local provider
        ensure_user(session=session, user_id=uuid.uuid4(), email="taken@example.com")
    answer = me(sb_client, fake.mint_access_token(sub=str(uuid.uuid4()), email="taken@example.com"))
    assert answer.status_code == 409
    assert "another Luster account" in answer.json()["detail"]
    assert user_count(sb_context) == 1
