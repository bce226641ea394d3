"""``s3://bucket/key`` objects and prefixes, with Sedna's env contract for the endpoint.

Settings come from the env names Sedna injects from a Dataset's or Model's
``credentialName`` secret (SEDNA-REFERENCE §2.3): ``S3_ENDPOINT_URL``, ``ACCESS_KEY_ID``,
``SECRET_ACCESS_KEY``. An endpoint without a scheme follows the secret's
``s3-usehttps`` convention, carried here by ``S3_USE_HTTPS`` (``0`` means plain http;
anything else, or unset, https). Empty credentials leave boto3 to its own chain.

boto3 is an optional dependency (``pip install sedna-py[s3]``), imported on first use.
A key that ends with ``/``, or names no object but prefixes some, is a folder:
downloads fetch every object below it and uploads of a directory write one object per file.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

from sedna.common.errors import ConfigError, SednaError


class S3Error(SednaError, OSError):
    """An S3 transfer failed; the message names the ``s3://`` URL."""


@dataclass(frozen=True)
class S3Settings:
    """Where S3 is and who we are there."""

    endpoint_url: str | None
    access_key_id: str
    secret_access_key: str
    region: str = "us-east-1"

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> S3Settings:
        env = os.environ if environ is None else environ
        endpoint = (env.get("S3_ENDPOINT_URL") or "").strip()
        if endpoint and "://" not in endpoint:
            scheme = "http" if (env.get("S3_USE_HTTPS") or "").strip() == "0" else "https"
            endpoint = f"{scheme}://{endpoint}"
        if endpoint and urlparse(endpoint).scheme not in ("http", "https"):
            raise ConfigError(f"env S3_ENDPOINT_URL={endpoint!r} must be an http:// or https:// URL")
        return cls(endpoint or None, env.get("ACCESS_KEY_ID", ""), env.get("SECRET_ACCESS_KEY", ""),
                   env.get("AWS_DEFAULT_REGION") or "us-east-1")

    def client(self) -> Any:
        """A boto3 S3 client for these settings."""
        try:
            import boto3
        except ModuleNotFoundError:
            raise ModuleNotFoundError(
                "s3:// URLs need boto3: install it with `pip install sedna-py[s3]` (or `pip install boto3`)"
            ) from None
        credentials = {}
        if self.access_key_id or self.secret_access_key:
            credentials = {"aws_access_key_id": self.access_key_id, "aws_secret_access_key": self.secret_access_key}
        return boto3.client("s3", endpoint_url=self.endpoint_url, region_name=self.region, **credentials)


def split_url(url: str) -> tuple[str, str]:
    """``s3://bucket/some/key`` -> ``("bucket", "some/key")``."""
    parsed = urlparse(url)
    if parsed.scheme != "s3" or not parsed.netloc:
        raise S3Error(f"{url!r} is not an s3://bucket/key URL")
    return parsed.netloc, parsed.path.lstrip("/")


def download_object(url: str, dest: str | Path, *, environ: Mapping[str, str] | None = None) -> Path:
    """Fetch the single object ``url`` into the file ``dest``."""
    bucket, key = split_url(url)
    client = S3Settings.from_env(environ).client()
    target = Path(dest)
    target.parent.mkdir(parents=True, exist_ok=True)
    part = target.with_name(target.name + ".part")
    with _errors(url):
        client.download_file(bucket, key, str(part))
    os.replace(part, target)
    return target


def download(url: str, dest: str | Path, *, environ: Mapping[str, str] | None = None) -> Path:
    """Fetch an object (to the file ``dest``) or a folder (into the directory ``dest``); return ``dest``."""
    bucket, key = split_url(url)
    client = S3Settings.from_env(environ).client()
    target = Path(dest)
    if key and not key.endswith("/") and _exists(client, bucket, key, url):
        if target.is_dir():
            target = target / Path(key).name
        return download_object(url, target, environ=environ)
    prefix = key if not key or key.endswith("/") else key + "/"
    keys = _list(client, bucket, prefix, url)
    if not keys:
        raise S3Error(f"{url!r} names no object and no folder")
    root = target.resolve()
    for name in keys:
        path = (target / name[len(prefix):]).resolve()
        if not path.is_relative_to(root):
            raise S3Error(f"object {name!r} under {url!r} would land outside {str(target)!r}; refused")
        download_object(f"s3://{bucket}/{name}", path, environ=environ)
    return target


def upload(src: str | Path, url: str, *, environ: Mapping[str, str] | None = None) -> str:
    """Write the file ``src`` to the object ``url``, or the directory ``src`` below the prefix ``url``."""
    bucket, key = split_url(url)
    client = S3Settings.from_env(environ).client()
    source = Path(src)
    if source.is_dir():
        prefix = key.rstrip("/")
        for path in sorted(p for p in source.rglob("*") if p.is_file()):
            name = "/".join(filter(None, [prefix, path.relative_to(source).as_posix()]))
            with _errors(f"s3://{bucket}/{name}"):
                client.upload_file(str(path), bucket, name)
        return url
    if not source.is_file():
        raise S3Error(f"cannot upload {str(source)!r} to {url!r}: no such file or directory")
    if not key or key.endswith("/"):
        key += source.name
    with _errors(url):
        client.upload_file(str(source), bucket, key)
    return f"s3://{bucket}/{key}"


def exists(url: str, *, environ: Mapping[str, str] | None = None) -> bool:
    """Whether ``url`` names an object or a non-empty folder."""
    bucket, key = split_url(url)
    client = S3Settings.from_env(environ).client()
    if key and not key.endswith("/") and _exists(client, bucket, key, url):
        return True
    prefix = key if not key or key.endswith("/") else key + "/"
    return bool(_list(client, bucket, prefix, url, limit=1))


def _exists(client: Any, bucket: str, key: str, url: str) -> bool:
    from botocore.exceptions import ClientError

    try:
        client.head_object(Bucket=bucket, Key=key)
    except ClientError as exc:
        if exc.response.get("Error", {}).get("Code") in ("404", "NoSuchKey", "NotFound"):
            return False
        raise S3Error(f"cannot read {url!r}: {exc}") from None
    return True


def _list(client: Any, bucket: str, prefix: str, url: str, limit: int | None = None) -> list[str]:
    keys: list[str] = []
    with _errors(url):
        for page in client.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
            keys += [item["Key"] for item in page.get("Contents", []) if not item["Key"].endswith("/")]
            if limit is not None and len(keys) >= limit:
                break
    return keys


class _errors:
    """Turns botocore's errors into :class:`S3Error` naming the URL."""

    def __init__(self, url: str) -> None:
        self.url = url

    def __enter__(self) -> None:
        return None

    def __exit__(self, kind: Any, exc: BaseException | None, tb: Any) -> None:
        if exc is None or isinstance(exc, S3Error):
            return
        from botocore.exceptions import BotoCoreError, ClientError

        if isinstance(exc, (BotoCoreError, ClientError)):
            raise S3Error(f"s3 transfer of {self.url!r} failed: {exc}") from None
