"""Shared field checks for resources that name a URL (Dataset, Model)."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlparse

URL_SCHEMES = ("", "file", "s3", "http", "https")


def check_url(value: Any, field: str) -> str | None:
    """A problem with a resource URL (``field: message``), or None when it is usable."""
    if not isinstance(value, str) or not value.strip():
        return f"{field}: required (a local path on the node, or s3:// / http(s):// URL)"
    scheme = urlparse(value).scheme.lower()
    if len(scheme) == 1:  # a Windows drive letter, not a scheme
        scheme = ""
    if scheme not in URL_SCHEMES:
        return f"{field}: unsupported URL scheme {scheme!r} in {value!r} (use a path, s3://, http:// or https://)"
    if scheme == "s3" and not urlparse(value).netloc:
        return f"{field}: {value!r} names no bucket (expected s3://bucket/key)"
    return None
