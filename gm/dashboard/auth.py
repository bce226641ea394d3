"""Who may read the dashboard: the GM's bearer token, presented once at a login form or on every request.

A browser posts the token to the login form (never in a URL, so it reaches no access log and no
history) and gets a session cookie: ``HttpOnly`` (no script can read it), ``SameSite=Strict`` (no
other site's page can send it), ``Path`` the dashboard's prefix, ``Secure`` over HTTPS. The cookie is
not the token: it is ``<expiry>.<HMAC-SHA256(token, expiry)>``, so a stolen cookie expires (after
:data:`SESSION_SECONDS`) and never reveals the token, and changing the GM's token ends every session.
API clients send ``Authorization: Bearer <token>`` instead. Comparisons are constant-time.
"""

from __future__ import annotations

import hashlib
import hmac
import time
from collections.abc import Callable
from urllib.parse import parse_qs

from starlette.requests import Request

COOKIE = "sedna_dashboard"
SESSION_SECONDS = 12 * 3600
MAX_FORM_BYTES = 4096


class Auth:
    """Checks requests against ``token``; issues and verifies session cookies."""

    def __init__(self, token: str, prefix: str, clock: Callable[[], float] = time.time) -> None:
        if not token:
            raise ValueError("token: the dashboard needs the GM's non-empty bearer token")
        self._key, self.prefix, self.clock = token.encode(), prefix, clock
        self._bearer = f"Bearer {token}".encode()

    def token_ok(self, candidate: str) -> bool:
        return hmac.compare_digest(candidate.encode(), self._key)

    def allowed(self, request: Request) -> bool:
        """Whether the request carries a valid session cookie or the bearer token."""
        header = request.headers.get("authorization", "")
        if header and hmac.compare_digest(header.encode(), self._bearer):
            return True
        return self.session_ok(request.cookies.get(COOKIE, ""))

    def session(self) -> str:
        """A new session cookie value."""
        expiry = str(int(self.clock()) + SESSION_SECONDS)
        return f"{expiry}.{self._sign(expiry)}"

    def session_ok(self, value: str) -> bool:
        expiry, _, signature = value.partition(".")
        if not expiry.isdigit() or not signature:
            return False
        return hmac.compare_digest(signature, self._sign(expiry)) and int(expiry) > self.clock()

    def cookie_header(self, value: str, secure: bool, max_age: int = SESSION_SECONDS) -> str:
        """The ``Set-Cookie`` value for ``value`` (an empty value with ``max_age=0`` ends the session)."""
        flags = f"; Path={self.prefix}/; HttpOnly; SameSite=Strict; Max-Age={max_age}"
        return f"{COOKIE}={value}{flags}{'; Secure' if secure else ''}"

    def _sign(self, expiry: str) -> str:
        return hmac.new(self._key, f"sedna-dashboard-session:{expiry}".encode(), hashlib.sha256).hexdigest()


async def form_fields(request: Request) -> dict[str, str] | None:
    """The fields of a small url-encoded form body (None when it is bigger than :data:`MAX_FORM_BYTES`)."""
    body = b""
    async for chunk in request.stream():
        body += chunk
        if len(body) > MAX_FORM_BYTES:
            return None
    return {k: v[0] for k, v in parse_qs(body.decode("utf-8", "replace"), keep_blank_values=True).items()}


def safe_next(target: str | None, prefix: str) -> str:
    """Where to go after login: a path inside the dashboard, never another site."""
    if target and target.startswith(prefix + "/") and not target.startswith("//") and "\\" not in target:
        return target
    return prefix + "/"
