"""The storage initializer: fetch models and data into a Pod's volume before its worker starts.

GM adds it as the ``storage-initializer`` init container of a worker whose Model or Dataset URL is
``http(s)://`` or ``s3://`` (:mod:`gm.workloads.storage`); the worker then reads local files. Its
arguments are Sedna's: pairs ``SRC DST``, where DST is the file to write (a URL ending in ``/``, or
an ``s3://`` prefix, is a folder and DST the directory it lands in). ``--sha256 N=HEX`` checks the
``N``-th pair (from 0). S3 settings come from Sedna's env (``S3_ENDPOINT_URL``, ``S3_USE_HTTPS``,
``ACCESS_KEY_ID``, ``SECRET_ACCESS_KEY``), injected from the ``credentialName`` Secret.

Downloads go through :func:`sedna.common.downloads.fetch`: written to ``DST.part`` and renamed only
when complete and matching, a broken HTTP transfer resumed with ``Range``, a restarted init
container resumes what is in ``.part`` and skips a DST already there (with the right checksum).
Every failure names the URL and exits 1, so the worker is never started half-configured.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from sedna.common import s3
from sedna.common.downloads import DownloadError, fetch, sha256_file
from sedna.common.errors import SednaError

__all__ = ["download_all", "main"]


def _head(client: Any, url: str) -> int | None:
    """The size of the object ``url``, or None when no object has that key (then it is a prefix)."""
    from botocore.exceptions import BotoCoreError, ClientError

    bucket, key = s3.split_url(url)
    try:
        return int(client.head_object(Bucket=bucket, Key=key)["ContentLength"])
    except ClientError as exc:
        if exc.response.get("Error", {}).get("Code") in ("404", "NoSuchKey", "NotFound"):
            return None
        raise s3.S3Error(f"cannot read {url!r}: {exc}") from None
    except BotoCoreError as exc:
        raise s3.S3Error(f"cannot reach the S3 endpoint for {url!r}: {exc}") from None


def fetch_s3_object(url: str, dest: str | Path, sha256: str | None = None,
                    environ: Mapping[str, str] | None = None, retries: int = 3, *,
                    client: Any = None, size: int | None = None) -> Path:
    """Stream the object ``url`` into ``dest`` through ``dest.part``: resumed with a ranged GET after a break,
    renamed only when whole and matching ``sha256``. One GET streams several times faster than boto3's
    ranged multipart ``download_file`` here (``bench.storage``). ``client`` and ``size`` reuse what the
    caller already has (one client and one HEAD per object)."""
    from botocore.exceptions import BotoCoreError, ClientError

    bucket, key = s3.split_url(url)
    target = Path(dest)
    target.parent.mkdir(parents=True, exist_ok=True)
    part = target.with_name(target.name + ".part")
    client = client or s3.S3Settings.from_env(environ).client()
    attempt = 0
    while True:
        try:
            if size is None:
                size = int(client.head_object(Bucket=bucket, Key=key)["ContentLength"])
            have = part.stat().st_size if part.exists() else 0
            if have > size:
                part.unlink()
                have = 0
            if have < size:
                extra = {"Range": f"bytes={have}-"} if have else {}
                body = client.get_object(Bucket=bucket, Key=key, **extra)["Body"]
                with part.open("ab" if have else "wb") as handle:
                    for chunk in body.iter_chunks(1 << 20):
                        handle.write(chunk)
            got = part.stat().st_size if part.exists() else 0
            if got < size:
                raise OSError(f"connection closed at {got} of {size} bytes")
            part.touch()  # an empty object has no body to write
            break
        except ClientError as exc:
            raise s3.S3Error(f"s3 transfer of {url!r} failed: {exc}") from None
        except (BotoCoreError, OSError) as exc:
            attempt += 1
            size = None  # the object may have changed: ask again
            if attempt > retries:
                raise s3.S3Error(f"s3 transfer of {url!r} failed: {exc}") from None
    if sha256 and sha256_file(part) != sha256.lower():
        actual = sha256_file(part)
        part.unlink()
        raise DownloadError(f"{url!r} has sha256 {actual}, expected {sha256.lower()}")
    part.replace(target)
    return target


def download_one(src: str, dst: str | Path, sha256: str | None = None,
                 environ: Mapping[str, str] | None = None, clients: dict[str, Any] | None = None) -> Path:
    """Fetch ``src`` to ``dst`` (a folder URL into the directory ``dst``); skip a complete ``dst``.

    ``clients`` caches the S3 client across calls (creating one costs more than a HEAD)."""
    target = Path(dst)
    if not src.startswith("s3://"):
        if target.is_file() and (not sha256 or sha256_file(target) == sha256.lower()):
            return target  # an init container run again after the worker's Pod restarted
        return fetch(src, target, sha256=sha256, environ=environ)
    cache = {} if clients is None else clients
    if "s3" not in cache:
        cache["s3"] = s3.S3Settings.from_env(environ).client()
    size = None if src.endswith("/") else _head(cache["s3"], src)
    if size is None:
        return s3.download(src, target, environ=environ)
    if target.is_file() and (not sha256 or sha256_file(target) == sha256.lower()):
        return target
    return fetch_s3_object(src, target, sha256, environ, client=cache["s3"], size=size)


def download_all(pairs: Sequence[tuple[str, str]], sha256: Mapping[int, str] | None = None,
                 environ: Mapping[str, str] | None = None) -> list[Path]:
    """Fetch every ``(src, dst)`` pair in order; raise on the first failure (naming its URL)."""
    sums = dict(sha256 or {})
    clients: dict[str, Any] = {}
    return [download_one(src, dst, sums.get(i), environ, clients) for i, (src, dst) in enumerate(pairs)]


def _parse(argv: Sequence[str] | None) -> tuple[list[tuple[str, str]], dict[int, str]]:
    parser = argparse.ArgumentParser(prog="python -m workers.storage",
                                     description="download SRC DST pairs before a worker starts")
    parser.add_argument("--sha256", action="append", default=[], metavar="N=HEX",
                        help="expected sha256 of the N-th pair's file (from 0)")
    parser.add_argument("pairs", nargs="+", metavar="SRC DST")
    args = parser.parse_args(argv)
    if len(args.pairs) % 2:
        parser.error(f"expected SRC DST pairs, got an odd number of arguments: {args.pairs}")
    pairs = list(zip(args.pairs[::2], args.pairs[1::2], strict=True))
    sums: dict[int, str] = {}
    for item in args.sha256:
        index, sep, digest = item.partition("=")
        if not sep or not index.isdigit() or int(index) >= len(pairs) or len(digest) != 64:
            parser.error(f"--sha256 {item!r}: expected N=<64 hex digits> with N < {len(pairs)}")
        sums[int(index)] = digest
    return pairs, sums


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point; exit 0 when every pair is in place, 1 naming the URL that failed, 2 on bad arguments."""
    pairs, sums = _parse(argv)
    clients: dict[str, Any] = {}
    for i, (src, dst) in enumerate(pairs):
        started = time.monotonic()
        try:
            path = download_one(src, dst, sums.get(i), clients=clients)
        except (DownloadError, SednaError, OSError, ModuleNotFoundError) as exc:
            print(f"storage-initializer: cannot fetch {src!r} into {dst!r}: {exc}", file=sys.stderr)
            return 1
        print(f"storage-initializer: {src} -> {path} ({time.monotonic() - started:.2f}s)", flush=True)
    return 0
