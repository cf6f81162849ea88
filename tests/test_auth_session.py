"""Staying signed in in the browser, coming back where you were, and the websocket's allowed origins."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import uuid
from datetime import timedelta

import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import ec
from sqlalchemy import func, select

from luster_app import routes
from luster_app.auth import AuthUnavailable
from luster_app.auth.supabase import SupabaseAuth
from luster_app.migrations import ROOT
from luster_app.models import User, utcnow
from luster_app.services.auth import resume_session, safe_next_path
from tests.redacted import Redacted

APP_URL = "https://luster.example.com"


@pytest.mark.parametrize(
    ("asked", "lands_on"),
    [
        ("/shoots/42?tab=outputs", "/shoots/42?tab=outputs"),
        (f"{APP_URL}/billing", "/billing"),
        (None, routes.SHOOTS),
        ("", routes.SHOOTS),
        ("https://evil.example/login", routes.SHOOTS),
        ("//evil.example/path", routes.SHOOTS),
        ("/\\evil.example", routes.SHOOTS),
        ("javascript:alert(1)", routes.SHOOTS),
        ("/shoots\r\nSet-Cookie: x", routes.SHOOTS),
        (routes.LOGIN, routes.SHOOTS),
        (routes.CONFIRM + "?token=abc", routes.SHOOTS),
        (routes.LOGOUT, routes.SHOOTS),
    ],
)
def test_after_sign_in_users_land_only_on_this_site(asked, lands_on) -> None:
    assert safe_next_path(asked, app_url=APP_URL) == lands_on


def test_login_url_carries_where_to_come_back() -> None:
    assert routes.login("/shoots/42?tab=outputs") == "/login?next=%2Fshoots%2F42%3Ftab%3Doutputs"
    assert routes.login() == "/login"


def _expired_token(context, user_id: uuid.UUID) -> str:
    """A session token of this provider's key whose time is up."""
    past = utcnow() - timedelta(hours=2)
    claims = {"iss": "luster-local", "aud": "authenticated", "sub": str(user_id), "email": "tab@example.com",
              "iat": past, "exp": past + timedelta(hours=1)}
    return Redacted(jwt.encode(claims, context.auth._private_key, algorithm="ES256"))


def test_valid_access_token_resumes_without_new_tokens(context) -> None:
    user_id = uuid.uuid4()
    token = Redacted(context.auth.issue_access_token(user_id=user_id, email="tab@example.com"))
    with context.session() as session:
        resumed = resume_session(session=session, auth=context.auth, access_token=token, refresh_token="")
    assert resumed is not None
    assert resumed.user.id == user_id
    assert resumed.tokens is None


def test_expired_access_token_is_refreshed(context) -> None:
    user_id = uuid.uuid4()
    first = context.auth._session_for(user_id=user_id, email="tab@example.com")
    with context.session() as session:
        resumed = resume_session(
            session=session, auth=context.auth,
            access_token=_expired_token(context, user_id), refresh_token=Redacted(first.refresh_token),
        )
    assert resumed is not None
    assert resumed.user.id == user_id
    assert resumed.tokens is not None
    assert context.auth.verify_access_token(resumed.tokens.access_token).user_id == user_id


def test_without_a_valid_token_the_browser_is_signed_out(context) -> None:
    user_id = uuid.uuid4()
    with context.session() as session:
        for access, refresh in (("", ""), (_expired_token(context, user_id), ""), ("junk", "junk")):
            assert resume_session(session=session, auth=context.auth, access_token=access, refresh_token=refresh) is None
        assert session.execute(select(func.count()).select_from(User)).scalar_one() == 0


def test_an_auth_outage_is_not_a_sign_out(context, settings) -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        closed = f"http://127.0.0.1:{sock.getsockname()[1]}"
    unreachable = SupabaseAuth(settings=settings.model_copy(update={"supabase_url": closed, "supabase_anon_key": "k"}))
    token = Redacted(jwt.encode({"sub": str(uuid.uuid4())}, ec.generate_private_key(ec.SECP256R1()),
                                algorithm="ES256", headers={"kid": "k1"}))
    with context.session() as session, pytest.raises(AuthUnavailable):
        resume_session(session=session, auth=unreachable, access_token=token, refresh_token="r")


def _origins_check(env: dict[str, str]) -> dict[str, bool]:
    """Open Reflex's real Socket.IO endpoint from two origins; which were let in."""
    code = (
        "import socketio\n"
        "from starlette.testclient import TestClient\n"
        "from luster_app.luster_app import app\n"
        "client = TestClient(socketio.ASGIApp(app.sio, socketio_path='_event'))\n"
        "for origin in ('https://luster.example.com', 'https://evil.example'):\n"
        "    try:\n"
        "        with client.websocket_connect('/_event/?EIO=4&transport=websocket',\n"
        "                headers={'origin': origin, 'upgrade': 'websocket', 'connection': 'upgrade'}) as ws:\n"
        "            print(origin, ws.receive_text()[:1] == '0')\n"  # engine.io "open" packet
        "    except Exception:\n"
        "        print(origin, False)\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True,
        env={**os.environ, "PYTHONPATH": str(ROOT), "APP_URL": APP_URL, **env},
    ).stdout.split()
    return {out[i]: out[i + 1] == "True" for i in range(0, len(out), 2)}


def test_outside_development_only_app_url_may_open_the_websocket() -> None:
    production = _origins_check({"LUSTER_ENV": "production", "SUPABASE_URL": "http://127.0.0.1:9", "SUPABASE_ANON_KEY": "k"})
    assert production == {"https://luster.example.com": True, "https://evil.example": False}
    development = _origins_check({"LUSTER_ENV": "development", "SUPABASE_URL": ""})
    assert development == {"https://luster.example.com": True, "https://evil.example": True}
