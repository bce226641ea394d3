"""HTTP client of the knowledge-base server (Sedna's ``KBClient``, without pickles).

``KBClient(kb_server, token)``: :meth:`upload_file` / :meth:`download_blob` move files by
content hash (the download is streamed to a temporary file, bounded, hashed and format-checked
before it is renamed into place); :meth:`update` registers an index version;
:meth:`update_task_status` is Sedna's call of the same name; :meth:`publish`, :meth:`index`
(conditional on an ETag), :meth:`versions`, :meth:`tasks`. Connection failures and 5xx raise
:class:`~.errors.KBUnavailableError`; a refused request raises the error its status means,
with the server's message.
"""

from __future__ import annotations

import hashlib
import os
import tempfile
from pathlib import Path
from typing import Any

from sedna.service.kb.blobs import DEFAULT_MAX_BLOB_BYTES, check_format
from sedna.service.kb.errors import KBError, KBNotFoundError, KBUnavailableError, KBValidationError

PREFIX = "/knowledgebase"


class KBClient:
    """Talks to one KB server (``http://host:port``, with or without the ``/knowledgebase`` suffix)."""

    def __init__(self, kb_server: str, token: str = "", timeout: float = 30.0,
                 max_blob_bytes: int = DEFAULT_MAX_BLOB_BYTES) -> None:
        import httpx

        base = kb_server.rstrip("/")
        self.base = base[: -len(PREFIX)] if base.endswith(PREFIX) else base
        self.max_blob_bytes = max_blob_bytes
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        self._http = httpx.Client(base_url=self.base, headers=headers, timeout=timeout,
                                  verify=not self.base.startswith("http://"))

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> KBClient:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()

    def _request(self, method: str, path: str, **kwargs: Any) -> Any:
        import httpx

        try:
            response = self._http.request(method, path, **kwargs)
        except httpx.HTTPError as exc:
            raise KBUnavailableError(f"KB server {self.base} unreachable: {type(exc).__name__}: {exc}") from None
        self._raise_for(response)
        return response

    @staticmethod
    def _raise_for(response: Any) -> None:
        if response.status_code < 400:
            return
        try:
            message = response.json().get("error", response.text)
        except ValueError:
            message = response.text
        if response.status_code >= 500:
            raise KBUnavailableError(f"KB server failed ({response.status_code}): {message}")
        if response.status_code == 404:
            raise KBNotFoundError(message)
        if response.status_code in (400, 413, 422):
            field, _, rest = str(message).partition(": ")
            raise KBValidationError(field if rest else "request", rest or str(message), response.status_code)
        raise KBError(f"KB server refused {response.request.method} {response.request.url.path} "
                      f"({response.status_code}): {message}")

    # -- files -------------------------------------------------------------------------------------
    def upload_file(self, path: str | Path, fmt: str | None = None) -> dict[str, Any]:
        """Upload a file; return its blob reference ``{sha256, size, format}``."""
        source = Path(path)
        fmt = fmt or source.suffix.lstrip(".")
        digest = hashlib.sha256()
        with source.open("rb") as handle:
            for chunk in iter(lambda: handle.read(1024 * 1024), b""):
                digest.update(chunk)
        sha = digest.hexdigest()
        with source.open("rb") as handle:
            response = self._request("PUT", f"{PREFIX}/blobs/{sha}", params={"format": fmt}, content=handle,
                                     headers={"Content-Type": "application/octet-stream"})
        return dict(response.json())

    def download_blob(self, ref: dict[str, Any], dest: str | Path) -> Path:
        """Fetch blob ``ref`` into ``dest``, checked against its size, hash and format."""
        import httpx

        target = Path(dest)
        target.parent.mkdir(parents=True, exist_ok=True)
        limit = min(self.max_blob_bytes, int(ref["size"]))
        fd, tmp_name = tempfile.mkstemp(dir=target.parent, prefix=".download-")
        tmp = Path(tmp_name)
        try:
            digest, size = hashlib.sha256(), 0
            with os.fdopen(fd, "wb") as out:
                try:
                    with self._http.stream("GET", f"{PREFIX}/blobs/{ref['sha256']}") as response:
                        if response.status_code >= 400:
                            response.read()
                            self._raise_for(response)
                        for chunk in response.iter_bytes():
                            size += len(chunk)
                            if size > limit:
                                raise KBValidationError("size", f"blob {ref['sha256']} is larger than {limit} bytes")
                            digest.update(chunk)
                            out.write(chunk)
                except httpx.HTTPError as exc:
                    raise KBUnavailableError(f"KB server {self.base} unreachable: {exc}") from None
            if digest.hexdigest() != ref["sha256"] or size != ref["size"]:
                raise KBValidationError("sha256", f"downloaded blob hashes to {digest.hexdigest()} ({size} bytes), "
                                                  f"expected {ref['sha256']} ({ref['size']} bytes)")
            check_format(tmp, ref["format"])
            os.replace(tmp, target)
        except BaseException:
            tmp.unlink(missing_ok=True)
            raise
        return target

    # -- index versions ----------------------------------------------------------------------------
    def update(self, index: dict[str, Any], publish: bool = False) -> int:
        """Register ``index`` as the next version; return its number."""
        response = self._request("POST", f"{PREFIX}/update", params={"publish": str(publish).lower()}, json=index)
        return int(response.json()["version"])

    def update_task_status(self, tasks: list[str] | str, new_status: int = 1, version: int | None = None,
                           publish: bool | None = None) -> int:
        """Set the ``deploy`` flag of task groups in a new version (Sedna's call); return that version."""
        body: dict[str, Any] = {"tasks": tasks if isinstance(tasks, str) else ",".join(tasks),
                                "status": int(new_status)}
        if version is not None:
            body["version"] = version
        if publish is not None:
            body["publish"] = publish
        return int(self._request("POST", f"{PREFIX}/update/status", json=body).json()["version"])

    def publish(self, version: int) -> None:
        self._request("POST", f"{PREFIX}/versions/{version}/publish")

    def index(self, version: int | None = None, etag: str | None = None) -> tuple[dict[str, Any] | None, str]:
        """``(index, etag)`` of ``version`` (default latest published); ``(None, etag)`` if unchanged."""
        path = f"{PREFIX}/index" + (f"/{version}" if version is not None else "")
        response = self._request("GET", path, headers={"If-None-Match": etag} if etag else {})
        if response.status_code == 304:
            return None, etag or ""
        return dict(response.json()), response.headers.get("etag", "")

    def versions(self) -> list[dict[str, Any]]:
        return list(self._request("GET", f"{PREFIX}/versions").json()["versions"])

    def tasks(self) -> list[dict[str, Any]]:
        return list(self._request("GET", f"{PREFIX}/tasks").json()["tasks"])
