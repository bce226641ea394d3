"""Remote Dataset indexes and output files for the LC: ``s3://`` and ``http(s)://`` URLs.

The dataset counter (:mod:`lc.managers.dataset`) and the incremental / lifelong loops
(:mod:`lc.incremental.samples`) parse local files only; a remote index is first copied into the
LC's cache (``<state dir>/remote/<user>/<hash of the URL>/<file name>``) and parsed there. A copy younger
than ``max_age`` seconds is reused, so a loop that ticks every second does not fetch every second.
Each fetch starts from scratch (an index grows between fetches, so a resumed partial copy would
splice two versions), lands in a ``.part`` file and replaces the cached copy only when complete:
a failed fetch leaves the last good copy in place.

Round sample files go to the job's ``outputDir``; when that is ``s3://`` they are written locally,
then uploaded (``http(s)://`` is read-only). S3 settings come from the LC's own environment
(``S3_ENDPOINT_URL``, ``S3_USE_HTTPS``, ``ACCESS_KEY_ID``, ``SECRET_ACCESS_KEY``): credential Secrets
never travel over the edge hub. Errors are :class:`RemoteError` naming the URL and the reason.
"""

from __future__ import annotations

import hashlib
import os
import time
from collections.abc import Mapping
from pathlib import Path

REMOTE_SCHEMES = ("s3://", "http://", "https://")


class RemoteError(OSError):
    """A remote index or output file cannot be read or written; the message names the URL."""


def is_remote(url: str) -> bool:
    """Whether ``url`` is fetched over the network (``s3://`` or ``http(s)://``)."""
    return url.startswith(REMOTE_SCHEMES)


def cache_dir_of(store_path: str, user: str) -> Path | None:
    """The remote cache of ``user`` beside an LC store file (None for an in-memory store: remote URLs unsupported).

    Each user (the dataset counter, each job loop) runs on its own thread and gets its own folder, so two
    fetches of one URL never share a ``.part`` file.
    """
    return None if store_path == ":memory:" else Path(store_path).parent / "remote" / user


def cached_path(url: str, cache_dir: Path) -> Path:
    """Where the copy of ``url`` lives in ``cache_dir``."""
    digest = hashlib.sha256(url.encode()).hexdigest()[:16]
    name = url.rstrip("/").rsplit("/", 1)[-1] or "index"
    return cache_dir / digest / name


def fetch_index(url: str, cache_dir: Path | None, max_age: float = 0.0,
                environ: Mapping[str, str] | None = None) -> Path:
    """A local copy of the remote file ``url``, fetched unless the cached one is younger than ``max_age`` s."""
    if cache_dir is None:
        raise RemoteError(f"cannot fetch {url!r}: this LC has no state directory to cache remote files in")
    target = cached_path(url, cache_dir)
    try:
        if max_age > 0 and time.time() - target.stat().st_mtime < max_age:
            return target
    except FileNotFoundError:
        pass
    from sedna.common.downloads import fetch

    target.with_name(target.name + ".part").unlink(missing_ok=True)
    try:
        fetch(url, target, environ=environ, retries=0, timeout=15.0)
    except ModuleNotFoundError as exc:  # boto3 missing
        raise RemoteError(f"cannot fetch {url!r}: {exc}") from None
    except Exception as exc:  # any transfer failure becomes one error naming the URL
        reason = str(exc) if url in str(exc) else f"{type(exc).__name__}: {exc}"
        raise RemoteError(f"cannot fetch {url!r}: {reason}") from None
    return target


def upload(local: str | Path, url: str, environ: Mapping[str, str] | None = None) -> str:
    """Write the local file to ``url`` (``s3://`` only); return ``url``."""
    if not url.startswith("s3://"):
        raise RemoteError(f"cannot write {url!r}: only local paths and s3:// URLs are writable")
    from sedna.common import s3

    try:
        s3.upload(local, url, environ=environ)
    except ModuleNotFoundError as exc:
        raise RemoteError(f"cannot write {url!r}: {exc}") from None
    except Exception as exc:  # any transfer failure becomes one error naming the URL
        reason = str(exc) if url in str(exc) else f"{type(exc).__name__}: {exc}"
        raise RemoteError(f"cannot write {url!r}: {reason}") from None
    return url


def staging_path(url: str, cache_dir: Path | None) -> Path:
    """A local file to write before uploading to ``url``."""
    if cache_dir is None:
        raise RemoteError(f"cannot write {url!r}: this LC has no state directory to stage remote files in")
    path = cache_dir / "outgoing" / hashlib.sha256(url.encode()).hexdigest()[:16] / url.rsplit("/", 1)[-1]
    path.parent.mkdir(parents=True, exist_ok=True)
    return path


def remove_staged(path: Path) -> None:
    try:
        os.unlink(path)
    except FileNotFoundError:
        pass
