"""Username/password authentication for the embedded MQTT broker (an amqtt auth plugin).

``sedna local up`` writes ``<state-dir>/mqtt-passwords`` (mode 0600), one ``USER:PASSWORD`` line per
client identity, and starts the broker with ``--password-file``; the edge workers and ``sedna device
simulate`` get the credentials from the same state dir. A CONNECT without a username, with an unknown
one or with a wrong password is refused (CONNACK "not authorised"). Passwords are random 256-bit
tokens, so they are compared in constant time as they are, not stretched with a slow hash; the file
is read once, at start. Imported only by the broker process, so amqtt stays out of ``import sedna``.
"""

from __future__ import annotations

import hmac
from dataclasses import dataclass, field
from pathlib import Path

from amqtt.plugins.base import BaseAuthPlugin
from amqtt.session import Session

PLUGIN = "sedna.service.mqtt.broker_auth.PasswordFileAuth"
"""The dotted path amqtt's ``plugins`` configuration names this plugin by."""


def read_password_file(path: str | Path) -> dict[str, str]:
    """``{user: password}`` from ``USER:PASSWORD`` lines (blank lines and ``#`` comments skipped).

    Raises ``ValueError`` naming the file and line of a malformed entry, ``OSError`` when unreadable.
    """
    users: dict[str, str] = {}
    for number, line in enumerate(Path(path).read_text(encoding="utf-8").splitlines(), 1):
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        user, sep, password = line.partition(":")
        if not sep or not user or not password:
            raise ValueError(f"{path}:{number}: expected USER:PASSWORD")
        users[user] = password
    if not users:
        raise ValueError(f"{path}: no USER:PASSWORD line: every client would be refused")
    return users


class PasswordFileAuth(BaseAuthPlugin):
    """Accept a session only with a username and password found in ``password_file``."""

    @dataclass
    class Config:
        password_file: str = field(default="")

    def __init__(self, context: object) -> None:
        super().__init__(context)  # type: ignore[arg-type]
        self._users = read_password_file(self._get_config_option("password_file", ""))

    async def authenticate(self, *, session: Session) -> bool | None:
        user = getattr(session, "username", None) or ""
        expected = self._users.get(user)
        given = getattr(session, "password", None) or ""
        if isinstance(given, bytes):
            given = given.decode("utf-8", "replace")
        # compare even for an unknown user, so timing does not tell which names exist
        ok = hmac.compare_digest(str(given).encode(), (expected or "\0" * 43).encode())
        return bool(ok and expected is not None)
