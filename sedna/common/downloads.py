"""Fetch a URL to a local file: streamed, resumable, checked, with progress.

:func:`fetch` is the one download core: :class:`~sedna.common.file_ops.FileOps` uses it,
and so can a storage initializer. Sources are local paths (``file://`` or plain),
``http(s)://`` (httpx, streamed) and ``s3://`` (:mod:`sedna.common.s3`).

An HTTP download is written to ``<dest>.part`` and renamed into place only when it is
complete and, when a ``sha256`` is given, matches it, so ``dest`` never holds half a file
or a wrong one. A broken transfer is resumed from the bytes already in ``.part`` with a
``Range`` request when the server answers ``206``; a server that ignores ranges (``200``)
is read again from the start. Every error names the URL.
"""

from __future__ import annotations

import hashlib
import os
import shutil
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from sedna.common.errors import SednaError
from sedna.common.log import get_logger

LOG = get_logger(__name__)

Progress = Callable[[int, "int | None"], None]
"""Called as ``progress(bytes_done, bytes_total_or_None)`` while a download runs."""


class DownloadError(SednaError, OSError):
    """A download failed or its content did not match the expected checksum; names the URL."""


def is_http(url: str) -> bool:
    return url.startswith(("http://", "https://"))


def local_path(url: str) -> Path:
    """The path a local URL names (``file://`` stripped)."""
    return Path(url.removeprefix("file://"))


def fetch(url: str, dest: str | Path, *, sha256: str | None = None, progress: Progress | None = None,
          headers: Mapping[str, str] | None = None, timeout: float = 30.0, retries: int = 3,
          environ: Mapping[str, str] | None = None) -> Path:
    """Copy ``url`` (local path, ``file://``, ``http(s)://`` or ``s3://``) to the file ``dest``.

    Parameters
    ----------
    sha256:
        Expected hex digest; a mismatch raises :class:`DownloadError` and leaves no ``dest``.
    progress:
        Called with ``(bytes_done, bytes_total or None)`` as data arrives.
    headers:
        Extra HTTP request headers (e.g. ``Authorization``).
    timeout:
        Seconds an HTTP connect or read may take.
    retries:
        How many times a broken HTTP transfer is resumed before giving up.
    environ:
        Where S3 settings are read from (default ``os.environ``).
    """
    target = Path(dest)
    target.parent.mkdir(parents=True, exist_ok=True)
    if is_http(url):
        _http(url, target, sha256, progress, dict(headers or {}), timeout, retries)
    elif url.startswith("s3://"):
        from sedna.common import s3

        part = target.with_name(target.name + ".part")
        s3.download_object(url, part, environ=environ)
        try:
            _check(url, part, sha256)
        except DownloadError:
            part.unlink(missing_ok=True)
            raise
        os.replace(part, target)
    else:
        source = local_path(url)
        if not source.is_file():
            raise DownloadError(f"cannot fetch {url!r}: no such file")
        _check(url, source, sha256)
        if source.resolve() != target.resolve():
            shutil.copyfile(source, target)
        if progress is not None:
            size = target.stat().st_size
            progress(size, size)
    return target


def sha256_file(path: str | Path) -> str:
    """Hex sha256 of a file."""
    digest = hashlib.sha256()
    with Path(path).open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _check(url: str, path: Path, sha256: str | None) -> None:
    if sha256:
        actual = sha256_file(path)
        if actual != sha256.lower():
            raise DownloadError(f"{url!r} has sha256 {actual}, expected {sha256.lower()}")


def _http(url: str, target: Path, sha256: str | None, progress: Progress | None, headers: dict[str, str],
          timeout: float, retries: int) -> None:
    import httpx

    part = target.with_name(target.name + ".part")
    attempt = 0
    with httpx.Client(timeout=timeout, follow_redirects=True) as client:
        while True:
            try:
                if _http_once(client, url, part, progress, headers):
                    break
            except DownloadError:
                raise
            except (httpx.TransportError, OSError) as exc:
                attempt += 1
                if attempt > retries:
                    raise DownloadError(f"cannot download {url!r}: {type(exc).__name__}: {exc}") from None
                LOG.warning("download of %s broke after %d bytes (%s); resuming", url, _size(part), exc)
    try:
        _check(url, part, sha256)
    except DownloadError:
        part.unlink(missing_ok=True)
        raise
    os.replace(part, target)


def _http_once(client: Any, url: str, part: Path, progress: Progress | None, headers: dict[str, str]) -> bool:
    """One request; True when ``part`` holds the whole body."""
    have = _size(part)
    request_headers = dict(headers, **({"Range": f"bytes={have}-"} if have else {}))
    with client.stream("GET", url, headers=request_headers) as response:
        if response.status_code == 416 and have:  # nothing left to send from this offset
            if response.headers.get("content-range", "").endswith(f"/{have}"):
                return True  # .part already holds the whole file
            part.unlink()  # a stale .part longer than the file: start again
            return False
        if response.status_code not in (200, 206):
            raise DownloadError(f"cannot download {url!r}: HTTP {response.status_code} {response.reason_phrase}")
        resumed = response.status_code == 206
        total = _total(response, have if resumed else 0)
        done = have if resumed else 0
        with part.open("ab" if resumed else "wb") as handle:
            for chunk in response.iter_bytes():  # as received: a break loses nothing already read
                handle.write(chunk)
                done += len(chunk)
                if progress is not None:
                    progress(done, total)
        if total is not None and done < total:
            raise OSError(f"connection closed at {done} of {total} bytes")
    return True


def _total(response: Any, offset: int) -> int | None:
    length = response.headers.get("content-length")
    if length is None or response.headers.get("content-encoding"):
        return None
    return offset + int(length)


def _size(path: Path) -> int:
    try:
        return path.stat().st_size
    except FileNotFoundError:
        return 0
