"""A node's credential record and the Secret it lives in (``sedna-node-<node>``).

The GM never stores a node token, only its SHA-256, so reading the Secret (or the local store's
database) does not let anyone act as the node. While a rotated token has not yet been
confirmed by the LC, the record also keeps the previous token's hash, valid until
``previous_expires``. The operator asks for a rotation by setting the annotation
:data:`ROTATE_ANNOTATION` to any new value; the record remembers the last value it honoured.
Secrets carry ``data`` base64-encoded, as Kubernetes stores them; this module is the only one
that knows the field names.
"""

from __future__ import annotations

import base64
import re
from dataclasses import dataclass, replace
from typing import Any

from gm.cluster.interface import Obj

SECRET_PREFIX = "sedna-node-"
SECRET_TYPE = "sedna.io/node-credential"
CREDENTIAL_LABEL = "sedna.io/credential"
ROTATE_ANNOTATION = "sedna.io/rotate"
"""Set it to a new value (a timestamp, say) to have the GM rotate the node's token."""
_NODE_NAME = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")
MAX_NODE_NAME = 253 - len(SECRET_PREFIX)


def secret_name(node: str) -> str:
    return SECRET_PREFIX + node


def check_node_name(node: str) -> str:
    """'' when ``node`` is a valid node name (a DNS-1123 subdomain short enough for its Secret), else why not."""
    if not node or len(node) > MAX_NODE_NAME or not _NODE_NAME.match(node):
        return (f"node name {node[:80]!r} is not a DNS-1123 subdomain of at most {MAX_NODE_NAME} characters "
                "(lowercase letters, digits, '-' and '.')")
    return ""


@dataclass(frozen=True)
class NodeRecord:
    """What the GM knows about one node's credential."""

    node: str
    token_sha256: str
    expires: int
    """Unix seconds after which the token is refused."""
    issued: int = 0
    previous_sha256: str = ""
    """The token before the last rotation, until the LC confirms the new one."""
    previous_expires: int = 0
    rotated: str = ""
    """The last :data:`ROTATE_ANNOTATION` value honoured."""
    rotate_request: str = ""
    """The current :data:`ROTATE_ANNOTATION` value ('' when none)."""
    resource_version: str = ""

    def rotation_due(self, now: float, ttl: float) -> str:
        """Why the token should be rotated now ('' when it need not be)."""
        if self.rotate_request and self.rotate_request != self.rotated:
            return f"requested ({ROTATE_ANNOTATION}={self.rotate_request!r})"
        if self.expires - now < ttl / 3:
            return "less than a third of its lifetime is left"
        return ""

    def rotate(self, token_sha256: str, now: int, ttl: int, grace: int) -> NodeRecord:
        """The record after issuing ``token_sha256``: the token the LC holds stays valid for ``grace`` seconds.

        The LC holds the previous token when one is recorded (it never confirmed the current
        one), else the current one.
        """
        held = self.previous_sha256 or self.token_sha256
        return replace(self, token_sha256=token_sha256, expires=now + ttl, issued=now, previous_sha256=held,
                       previous_expires=now + grace, rotated=self.rotate_request or self.rotated)

    def confirmed(self) -> NodeRecord:
        return replace(self, previous_sha256="", previous_expires=0)


def _enc(value: str | int) -> str:
    return base64.b64encode(str(value).encode()).decode()


def _dec(data: dict[str, Any], key: str) -> str:
    raw = data.get(key)
    if not isinstance(raw, str):
        return ""
    try:
        return base64.b64decode(raw).decode()
    except (ValueError, UnicodeDecodeError):
        return ""


def _int(text: str) -> int:
    return int(text) if text.isdigit() else 0


def from_secret(secret: Obj) -> NodeRecord | None:
    """The record a node credential Secret holds, or None when it is not one (or is unreadable)."""
    meta = secret.get("metadata") or {}
    if (meta.get("labels") or {}).get(CREDENTIAL_LABEL) != "node":
        return None
    data = secret.get("data") or {}
    if not isinstance(data, dict):
        return None
    node = _dec(data, "node")
    if not node or secret_name(node) != meta.get("name"):
        return None
    return NodeRecord(node=node, token_sha256=_dec(data, "tokenSha256"), expires=_int(_dec(data, "expires")),
                      issued=_int(_dec(data, "issued")), previous_sha256=_dec(data, "previousTokenSha256"),
                      previous_expires=_int(_dec(data, "previousExpires")), rotated=_dec(data, "rotated"),
                      rotate_request=str((meta.get("annotations") or {}).get(ROTATE_ANNOTATION) or ""),
                      resource_version=str(meta.get("resourceVersion") or ""))


def to_secret(record: NodeRecord, namespace: str, base: Obj | None = None) -> Obj:
    """The Secret holding ``record`` (``base``: the stored Secret, whose other metadata is kept)."""
    secret: Obj = dict(base) if base else {"apiVersion": "v1", "kind": "Secret",
                                           "metadata": {"name": secret_name(record.node), "namespace": namespace}}
    meta = dict(secret.get("metadata") or {})
    meta["labels"] = {**(meta.get("labels") or {}), CREDENTIAL_LABEL: "node"}
    secret["metadata"] = meta
    secret["type"] = SECRET_TYPE
    fields: dict[str, str | int] = {"node": record.node, "tokenSha256": record.token_sha256,
                                    "expires": record.expires, "issued": record.issued, "rotated": record.rotated}
    if record.previous_sha256:
        fields |= {"previousTokenSha256": record.previous_sha256, "previousExpires": record.previous_expires}
    secret["data"] = {key: _enc(value) for key, value in fields.items()}
    return secret
