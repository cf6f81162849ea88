"""A JWKS cache that picks up rotated keys without letting unknown `kid`s hammer the JWKS endpoint."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable

import httpx
import jwt

from luster_app.auth.base import AuthError, AuthUnavailable

log = logging.getLogger(__name__)

# As jose's createRemoteJWKSet: keys are re-read after ten minutes, and at most once per
# cooldown when a token names a key we do not know (a rotation, or an attacker's junk).
MAX_AGE_SECONDS = 600.0
COOLDOWN_SECONDS = 30.0
UNAVAILABLE = "Sign-in is unavailable right now; try again in a minute."


class JwksCache:
    """The signing keys published at `url`, fetched lazily and shared by all threads."""

    def __init__(
        self,
        *,
        url: str,
        http: httpx.Client,
        max_age_seconds: float = MAX_AGE_SECONDS,
        cooldown_seconds: float = COOLDOWN_SECONDS,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.url = url
        self._http = http
        self._max_age = max_age_seconds
        self._cooldown = cooldown_seconds
        self._clock = clock
        self._keys: dict[str, jwt.PyJWK] = {}
        self._fetched_at: float | None = None
        self._attempted_at: float | None = None
        # Held across the fetch: concurrent verifiers wait for one request instead of each sending theirs.
        self._lock = threading.Lock()

    def key(self, kid: str) -> jwt.PyJWK:
        """The published key with this id; AuthError if it is not published."""
        with self._lock:
            now = self._clock()
            expired = self._fetched_at is None or now - self._fetched_at >= self._max_age
            may_refetch = self._attempted_at is None or now - self._attempted_at >= self._cooldown
            if (expired or kid not in self._keys) and may_refetch:
                self._fetch(now)
            key = self._keys.get(kid)
            never_fetched = self._fetched_at is None
        if key is None and never_fetched:
            # No key list yet (the endpoint is down): nobody can be verified, which is an outage, not a bad token.
            raise AuthUnavailable(UNAVAILABLE)
        if key is None:
            raise AuthError("invalid or expired session: unknown signing key")
        return key

    def _fetch(self, now: float) -> None:
        self._attempted_at = now
        try:
            response = self._http.get(self.url)
            response.raise_for_status()
            keys = _parse_jwks(response.json())
        except (httpx.HTTPError, ValueError) as exc:
            log.warning("could not fetch the JWKS from %s: %s", self.url, exc.__class__.__name__)
            if not self._keys:
                raise AuthUnavailable(UNAVAILABLE) from exc
            return  # keep verifying with the keys we have
        self._keys = keys
        self._fetched_at = now


def _parse_jwks(document: object) -> dict[str, jwt.PyJWK]:
    """Signing keys by kid; keys we cannot use (encryption keys, unknown types) are skipped."""
    if not isinstance(document, dict) or not isinstance(document.get("keys"), list):
        raise ValueError("not a JWKS document")
    keys: dict[str, jwt.PyJWK] = {}
    for entry in document["keys"]:
        if not isinstance(entry, dict) or not entry.get("kid") or entry.get("use", "sig") != "sig":
            continue
        try:
            keys[str(entry["kid"])] = jwt.PyJWK.from_dict(entry)
        except jwt.PyJWTError:
            continue
    return keys
