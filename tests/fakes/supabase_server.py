"""A local HTTP server that plays Supabase Auth (GoTrue) for tests: it sends no email.

It records each OTP request (the "email" a test then reads), serves a JWKS, mints ES256
access tokens shaped like Supabase's, and answers /verify (token_hash) and
/token?grant_type=refresh_token. Keys can be rotated; JWKS requests are counted.

Refresh tokens rotate as GoTrue's do: a used token presented again within the reuse interval
(GoTrue's REFRESH_TOKEN_REUSE_INTERVAL, 10 s by default) gets the session's current token, for
clients that refreshed at the same moment; later, it counts as reuse and revokes every refresh
token of that session (reuse detection).
"""

from __future__ import annotations

import hashlib
import json
import secrets
import threading
import time
import uuid
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

import jwt
from cryptography.hazmat.primitives.asymmetric import ec

from tests.redacted import Redacted

LINK_TTL_SECONDS = 3600
ACCESS_TTL_SECONDS = 3600


@dataclass
class _Link:
    email: str
    expires_at: float
    used: bool = False


@dataclass
class _Refresh:
    user_id: str
    email: str
    session_id: str
    revoked_at: float | None = None

    @property
    def revoked(self) -> bool:
        return self.revoked_at is not None


@dataclass
class OtpRequest:
    """What the fake would have emailed: the address, the token hash and Supabase's redirect target."""

    email: str
    token_hash: str
    redirect_to: str | None
    body: dict[str, Any] = field(default_factory=dict)


class FakeSupabase:
    """Start with `with FakeSupabase() as fake:`; point SUPABASE_URL at `fake.url`."""

    def __init__(self) -> None:
        self.jwt_secret = Redacted(secrets.token_urlsafe(32))  # the project's legacy HS256 secret
        now = int(time.time())
        # Like a real project's legacy anon key: an HS256 JWT with role "anon" and no subject.
        self.anon_key = Redacted(jwt.encode(
            {"iss": "supabase", "ref": "fakeproject", "role": "anon", "iat": now, "exp": now + 10 * 365 * 86400},
            self.jwt_secret,
            algorithm="HS256",
        ))
        self.keys: dict[str, ec.EllipticCurvePrivateKey] = {}
        self.current_kid = self.rotate_key()
        self.jwks_requests = 0
        self.otp_requests: list[OtpRequest] = []
        self.logouts: list[str] = []
        self.users: dict[str, str] = {}  # email -> user id
        self.reuse_interval_seconds = 10.0  # GoTrue's default REFRESH_TOKEN_REUSE_INTERVAL
        self.reuse_detections = 0
        self._links: dict[str, _Link] = {}
        self._refresh: dict[str, _Refresh] = {}
        self._lock = threading.Lock()
        self._server: ThreadingHTTPServer | None = None

    # --- lifecycle ---

    def __enter__(self) -> FakeSupabase:
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), _handler_for(self))
        threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()
        return self

    def __exit__(self, *exc: object) -> None:
        assert self._server is not None
        self._server.shutdown()
        self._server.server_close()

    @property
    def url(self) -> str:
        assert self._server is not None
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}"

    @property
    def issuer(self) -> str:
        return f"{self.url}/auth/v1"

    # --- keys and tokens ---

    def rotate_key(self, *, revoke_previous: bool = False) -> str:
        """Publish a new ES256 key and sign with it from now on; returns its kid."""
        kid = str(uuid.uuid4())
        if revoke_previous:
            self.keys.clear()
        self.keys[kid] = ec.generate_private_key(ec.SECP256R1())
        self.current_kid = kid
        return kid

    def jwks(self) -> dict[str, Any]:
        keys = []
        for kid, private_key in self.keys.items():
            jwk = json.loads(jwt.algorithms.ECAlgorithm.to_jwk(private_key.public_key()))
            keys.append({**jwk, "alg": "ES256", "kid": kid, "use": "sig", "key_ops": ["verify"], "ext": True})
        return {"keys": keys}

    def mint_access_token(
        self, *, sub: str | None, email: str, kid: str | None = None, expires_in: int = ACCESS_TTL_SECONDS,
        session_id: str | None = None, **overrides: Any,
    ) -> str:
        """An access token shaped like Supabase's; `overrides` replace claims (None removes one)."""
        now = int(time.time())
        claims: dict[str, Any] = {
            "aud": "authenticated",
            "exp": now + expires_in,
            "iat": now,
            "iss": self.issuer,
            "sub": sub,
            "email": email,
            "phone": "",
            "app_metadata": {"provider": "email", "providers": ["email"]},
            "user_metadata": {"email": email, "email_verified": True},
            "role": "authenticated",
            "aal": "aal1",
            "amr": [{"method": "otp", "timestamp": now}],
            "session_id": session_id or str(uuid.uuid4()),
            "is_anonymous": False,
        }
        claims.update(overrides)
        claims = {k: v for k, v in claims.items() if v is not None}
        kid = kid or self.current_kid
        return Redacted(jwt.encode(claims, self.keys[kid], algorithm="ES256", headers={"kid": kid, "typ": "JWT"}))

    def public_key_pem(self, kid: str | None = None) -> bytes:
        from cryptography.hazmat.primitives import serialization

        return self.keys[kid or self.current_kid].public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )

    def expire_links(self) -> None:
        """Make every outstanding link too old, as an hour passing would."""
        with self._lock:
            for link in self._links.values():
                link.expires_at = 0

    # --- the endpoints' logic ---

    def _new_session(self, email: str) -> dict[str, Any]:
        user_id = self.users.setdefault(email, str(uuid.uuid4()))
        session_id = str(uuid.uuid4())
        return self._session_body(user_id=user_id, email=email, session_id=session_id)

    def _current_refresh(self, session_id: str) -> str | None:
        return next((token for token, refresh in self._refresh.items()
                     if refresh.session_id == session_id and not refresh.revoked), None)

    def _revoke_session(self, session_id: str, now: float) -> None:
        for refresh in self._refresh.values():
            if refresh.session_id == session_id and refresh.revoked_at is None:
                refresh.revoked_at = now

    def _session_body(self, *, user_id: str, email: str, session_id: str,
                      refresh_token: str | None = None) -> dict[str, Any]:
        if refresh_token is None:
            refresh_token = secrets.token_urlsafe(9)  # Supabase's refresh tokens are short opaque strings
            self._refresh[refresh_token] = _Refresh(user_id=user_id, email=email, session_id=session_id)
        now = int(time.time())
        return {
            "access_token": self.mint_access_token(sub=user_id, email=email, session_id=session_id),
            "token_type": "bearer",
            "expires_in": ACCESS_TTL_SECONDS,
            "expires_at": now + ACCESS_TTL_SECONDS,
            "refresh_token": refresh_token,
            "user": {"id": user_id, "aud": "authenticated", "role": "authenticated", "email": email},
        }

    def handle(self, method: str, path: str, query: dict[str, str], headers: dict[str, str],
               body: dict[str, Any]) -> tuple[int, dict[str, Any] | None]:
        if method == "GET" and path == "/auth/v1/.well-known/jwks.json":
            with self._lock:
                self.jwks_requests += 1
            return 200, self.jwks()
        if headers.get("apikey") != self.anon_key:
            return 401, {"message": "Invalid API key"}
        with self._lock:
            if method == "POST" and path == "/auth/v1/otp":
                email = str(body.get("email", "")).strip().lower()
                token_hash = hashlib.sha224(f"{email}{secrets.token_hex(3)}".encode()).hexdigest()
                self._links[token_hash] = _Link(email=email, expires_at=time.time() + LINK_TTL_SECONDS)
                self.otp_requests.append(OtpRequest(email, token_hash, query.get("redirect_to"), body))
                return 200, {}
            if method == "POST" and path == "/auth/v1/verify":
                link = self._links.get(str(body.get("token_hash", "")))
                if body.get("type") not in ("magiclink", "email", "signup"):
                    return 400, {"code": 400, "error_code": "validation_failed", "msg": "Verify requires a verification type"}
                if link is None or link.used or link.expires_at < time.time():
                    return 403, {"code": 403, "error_code": "otp_expired", "msg": "Email link is invalid or has expired"}
                link.used = True
                return 200, self._new_session(link.email)
            if method == "POST" and path == "/auth/v1/token" and query.get("grant_type") == "refresh_token":
                refresh = self._refresh.get(str(body.get("refresh_token", "")))
                if refresh is None:
                    return 400, {"code": 400, "error_code": "refresh_token_not_found",
                                 "msg": "Invalid Refresh Token: Refresh Token Not Found"}
                now = time.time()
                if refresh.revoked_at is not None:
                    current = self._current_refresh(refresh.session_id)
                    if current is not None and now - refresh.revoked_at <= self.reuse_interval_seconds:
                        return 200, self._session_body(user_id=refresh.user_id, email=refresh.email,
                                                       session_id=refresh.session_id, refresh_token=current)
                    self.reuse_detections += 1
                    self._revoke_session(refresh.session_id, now)
                    return 400, {"code": 400, "error_code": "refresh_token_already_used",
                                 "msg": "Invalid Refresh Token: Already Used"}
                refresh.revoked_at = now
                return 200, self._session_body(user_id=refresh.user_id, email=refresh.email,
                                               session_id=refresh.session_id)
            if method == "POST" and path == "/auth/v1/logout":
                token = headers.get("authorization", "").removeprefix("Bearer ")
                try:
                    claims = jwt.decode(token, self.keys[jwt.get_unverified_header(token)["kid"]].public_key(),
                                        algorithms=["ES256"], audience="authenticated")
                except (jwt.PyJWTError, KeyError):
                    return 401, {"code": 401, "error_code": "bad_jwt", "msg": "invalid JWT"}
                everywhere = query.get("scope") == "global"  # every session of the user, as GoTrue does
                session_ids = {str(claims.get("session_id"))} | {
                    refresh.session_id for refresh in self._refresh.values()
                    if everywhere and refresh.user_id == claims.get("sub")}
                for session_id in session_ids:
                    self._revoke_session(session_id, time.time())
                self.logouts.append(str(claims["sub"]))
                return 204, None
        return 404, {"code": 404, "error_code": "not_found", "msg": "not found"}


def _handler_for(fake: FakeSupabase) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def _serve(self, method: str) -> None:
            url = urlsplit(self.path)
            query = {k: v[0] for k, v in parse_qs(url.query).items()}
            length = int(self.headers.get("Content-Length") or 0)
            raw = self.rfile.read(length) if length else b""
            try:
                body = json.loads(raw) if raw else {}
            except ValueError:
                body = {}
            headers = {k.lower(): v for k, v in self.headers.items()}
            status, payload = fake.handle(method, url.path, query, headers, body if isinstance(body, dict) else {})
            data = b"" if payload is None else json.dumps(payload).encode()
            self.send_response(status)
            if payload is not None:
                self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def do_GET(self) -> None:  # noqa: N802
            self._serve("GET")

        def do_POST(self) -> None:  # noqa: N802
            self._serve("POST")

        def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
            pass  # keep tokens and hashes out of test output

    return Handler
