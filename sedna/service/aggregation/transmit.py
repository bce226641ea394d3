"""Federated weights through S3 instead of the aggregation channel (Sedna's ``TRANSMITTER=s3``).

With ``TRANSMITTER=s3`` a party that would stream a model over the gRPC channel writes it to
``AGG_DATA_PATH/<job>/round-<n>/<name>.npz`` (numpy ``.npz``, never pickle) and sends only an
:class:`ObjectRef` - the object's URL, size and sha256 - packed into one fixed-size ``uint8``
tensor named :data:`REF_TENSOR`, so the channel, its header checks and its checkpoints carry a
few hundred bytes whatever the model's size. The receiver downloads the object, checks size and
sha256 (the channel is authenticated, the bucket may not be: a changed object is refused) and
loads it with ``allow_pickle=False``.

:class:`S3Transmitter` does the transfers for both sides: trainers through
``sedna.core.federated_learning``, the aggregator through :mod:`sedna.service.aggregation.s3_server`.
A missing or corrupt object is a :class:`TransmitError` naming its URL; an endpoint that does not
answer is retried with exponential back-off and then a :class:`TransmitError` naming the endpoint
and the URL. ``TRANSMITTER=ws`` (the default) changes nothing: :meth:`S3Transmitter.from_env`
returns None.

Credentials are Sedna's S3 env (``S3_ENDPOINT_URL``, ``S3_USE_HTTPS``, ``ACCESS_KEY_ID``,
``SECRET_ACCESS_KEY``), injected by the GM from ``spec.transmitter.s3.credentialName``.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import numpy as np

from sedna.algorithms.aggregation.records import Weights
from sedna.common.errors import ConfigError, SednaError
from sedna.common.log import get_logger
from sedna.common.s3 import S3Settings, split_url

LOG = get_logger(__name__)
T = TypeVar("T")

REF_TENSOR = "__sedna_s3_object__"
"""Name of the one tensor that carries an :class:`ObjectRef` over the channel."""
REF_BYTES = 2048
"""Fixed length of that tensor, so every reference passes the server's shape check."""


class TransmitError(SednaError, OSError):
    """An object could not be written, found or trusted; the message names its ``s3://`` URL."""


@dataclass(frozen=True)
class ObjectRef:
    """Where a model was written and what it must hash to."""

    url: str
    size: int
    sha256: str

    def to_weights(self) -> Weights:
        """The reference as the single ``uint8`` tensor that travels in place of the model."""
        raw = json.dumps({"url": self.url, "size": self.size, "sha256": self.sha256}).encode()
        if len(raw) > REF_BYTES:
            raise TransmitError(f"{self.url}: the object URL is too long to send ({len(raw)} > {REF_BYTES} bytes)")
        buf = np.zeros(REF_BYTES, np.uint8)
        buf[: len(raw)] = np.frombuffer(raw, np.uint8)
        return {REF_TENSOR: buf}

    @classmethod
    def from_weights(cls, weights: Mapping[str, np.ndarray]) -> ObjectRef | None:
        """The reference ``weights`` carry, or None when they are a model."""
        if set(weights) != {REF_TENSOR}:
            return None
        arr = np.asarray(weights[REF_TENSOR])
        if arr.dtype != np.uint8 or arr.ndim != 1:
            raise TransmitError(f"tensor {REF_TENSOR!r} is not an S3 object reference (dtype {arr.dtype})")
        try:
            data = json.loads(arr.tobytes().rstrip(b"\0"))
            ref = cls(str(data["url"]), int(data["size"]), str(data["sha256"]))
        except (ValueError, KeyError, TypeError) as exc:
            raise TransmitError(f"tensor {REF_TENSOR!r} is not a valid S3 object reference ({exc})") from None
        split_url(ref.url)
        return ref


def is_ref(weights: Mapping[str, np.ndarray]) -> bool:
    """Whether ``weights`` is a reference rather than a model."""
    return set(weights) == {REF_TENSOR}


@dataclass(frozen=True)
class TransmitSettings:
    """Where models go and how hard to try."""

    base_url: str
    """``AGG_DATA_PATH``: ``s3://bucket[/prefix]``."""
    job: str
    """The job's name: the first path element below ``base_url``."""
    s3: S3Settings = field(default_factory=lambda: S3Settings(None, "", ""))
    attempts: int = 6
    """Tries per transfer while the endpoint does not answer."""
    backoff_initial_s: float = 0.5
    backoff_max_s: float = 8.0
    connect_timeout_s: float = 5.0

    def __post_init__(self) -> None:
        if not self.base_url.startswith("s3://") or not self.base_url[5:].split("/")[0]:
            raise ConfigError(f"env AGG_DATA_PATH={self.base_url!r} must be an s3://bucket/prefix URL "
                              "when TRANSMITTER=s3")
        if not self.job or "/" in self.job:
            raise ConfigError(f"env JOB_NAME={self.job!r}: TRANSMITTER=s3 needs a job name without '/'")
        if self.attempts < 1:
            raise ConfigError(f"S3 transfer attempts must be at least 1, got {self.attempts}")


def _number(env: Mapping[str, str], name: str, default: float) -> float:
    raw = (env.get(name) or "").strip()
    try:
        return float(raw) if raw else default
    except ValueError:
        raise ConfigError(f"env {name}={raw!r} is not a number") from None


class S3Transmitter:
    """Uploads models and resolves references (see the module docstring)."""

    def __init__(self, settings: TransmitSettings, sleep: Callable[[float], None] = time.sleep) -> None:
        self.settings = settings
        self._sleep = sleep
        self._client: Any = None
        self._recent: dict[str, dict[str, Weights]] = {"sent": {}, "received": {}}
        """The last model sent and the last received, by sha256: a party never downloads what it just wrote."""

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> S3Transmitter | None:
        """The transmitter a worker environment asks for; None for ``TRANSMITTER=ws`` (or unset)."""
        env = os.environ if environ is None else environ
        kind = (env.get("TRANSMITTER") or "ws").strip().lower()
        if kind == "ws":
            return None
        if kind != "s3":
            raise ConfigError(f"env TRANSMITTER={kind!r} must be 'ws' or 's3'")
        settings = TransmitSettings(
            base_url=(env.get("AGG_DATA_PATH") or "").strip(), job=(env.get("JOB_NAME") or "").strip(),
            s3=S3Settings.from_env(env), attempts=int(_number(env, "S3_TRANSFER_ATTEMPTS", 6)),
            backoff_initial_s=_number(env, "S3_BACKOFF_SECONDS", 0.5))
        return cls(settings)

    # ---- naming
    @property
    def job_prefix(self) -> str:
        """``<AGG_DATA_PATH>/<job>/``: every object of the job lies below it."""
        return f"{self.settings.base_url.rstrip('/')}/{self.settings.job}/"

    def url_for(self, server_round: int, name: str) -> str:
        """``<AGG_DATA_PATH>/<job>/round-<n>/<name>.npz``."""
        if not name or "/" in name:
            raise TransmitError(f"cannot name an object after {name!r} (empty or containing '/')")
        return f"{self.job_prefix}round-{int(server_round)}/{name}.npz"

    # ---- the two directions
    def send(self, weights: Mapping[str, np.ndarray], server_round: int, name: str) -> Weights:
        """Upload ``weights`` as round ``server_round``'s object of ``name``; return the reference tensor."""
        url = self.url_for(server_round, name)
        bad = [n for n, a in weights.items() if np.asarray(a).dtype.kind == "O"]
        if bad:
            raise TransmitError(f"{url}: tensor {bad[0]!r} has dtype object, which npz cannot hold without pickle")
        bucket, key = split_url(url)
        with tempfile.TemporaryDirectory(prefix="sedna-fl-") as tmp:
            path = Path(tmp) / "weights.npz"
            with path.open("wb") as handle:
                np.savez(handle, **{n: np.asarray(a) for n, a in weights.items()})  # type: ignore[arg-type]
            digest, size = _sha256(path), path.stat().st_size
            self._retry(url, lambda: self._s3().upload_file(str(path), bucket, key))
        self._recent["sent"] = {digest: {n: np.asarray(a) for n, a in weights.items()}}
        LOG.debug("sent %d bytes to %s", size, url)
        return ObjectRef(url, size, digest).to_weights()

    def receive(self, weights: Mapping[str, np.ndarray], expect_url: str = "") -> Weights:
        """The model ``weights`` refers to (``weights`` itself when it is a model).

        ``expect_url``, when given, is the only URL accepted (an aggregator knows where each
        trainer must write); otherwise the object must lie below :attr:`job_prefix`.
        """
        ref = ObjectRef.from_weights(weights)
        if ref is None:
            return dict(weights)
        if expect_url and ref.url != expect_url:
            raise TransmitError(f"reference to {ref.url} refused: this sender writes to {expect_url}")
        if not ref.url.startswith(self.job_prefix):
            raise TransmitError(f"reference to {ref.url} refused: not below the job's {self.job_prefix}")
        for recent in self._recent.values():
            if ref.sha256 in recent:
                return dict(recent[ref.sha256])
        bucket, key = split_url(ref.url)
        with tempfile.TemporaryDirectory(prefix="sedna-fl-") as tmp:
            path = Path(tmp) / "weights.npz"
            self._retry(ref.url, lambda: self._s3().download_file(bucket, key, str(path)))
            size, digest = path.stat().st_size, _sha256(path)
            if size != ref.size or digest != ref.sha256:
                raise TransmitError(f"{ref.url}: the object changed after it was sent (size {size}, sha256 "
                                    f"{digest[:12]}... but the sender announced {ref.size}, {ref.sha256[:12]}...)")
            try:
                with np.load(path, allow_pickle=False) as data:
                    model = {name: data[name] for name in data.files}
            except (ValueError, OSError) as exc:
                raise TransmitError(f"{ref.url}: not a readable .npz of tensors ({exc})") from None
        self._recent["received"] = {digest: model}
        return dict(model)

    def prune(self, before_round: int) -> int:
        """Delete the job's objects of every round before ``before_round``; return how many went."""
        bucket, prefix = split_url(self.job_prefix)
        doomed: list[str] = []
        pages = self._retry(self.job_prefix, lambda: list(
            self._s3().get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix)))
        for page in pages:
            for item in page.get("Contents", []):
                round_dir = item["Key"][len(prefix):].split("/", 1)[0]
                number = round_dir.removeprefix("round-")
                if round_dir.startswith("round-") and number.isdigit() and int(number) < before_round:
                    doomed.append(item["Key"])
        for start in range(0, len(doomed), 1000):  # DeleteObjects takes at most 1000 keys
            batch = {"Objects": [{"Key": key} for key in doomed[start:start + 1000]], "Quiet": True}
            self._retry(self.job_prefix, lambda batch=batch: self._s3().delete_objects(Bucket=bucket, Delete=batch))
        return len(doomed)

    # ---- plumbing
    def _s3(self) -> Any:
        """A boto3 client that fails fast (one try, short connect timeout): :meth:`_retry` backs off."""
        if self._client is None:
            try:
                import boto3
                from botocore.config import Config
            except ModuleNotFoundError:
                raise ModuleNotFoundError("TRANSMITTER=s3 needs boto3: install it with `pip install sedna-py[s3]`"
                                          ) from None
            s = self.settings.s3
            creds = ({"aws_access_key_id": s.access_key_id, "aws_secret_access_key": s.secret_access_key}
                     if s.access_key_id or s.secret_access_key else {})
            config = Config(connect_timeout=self.settings.connect_timeout_s, retries={"total_max_attempts": 1})
            self._client = boto3.client("s3", endpoint_url=s.endpoint_url, region_name=s.region, config=config,
                                        **creds)
        return self._client

    def _retry(self, url: str, call: Callable[[], T]) -> T:
        """``call()``, retried with back-off while the endpoint does not answer; errors name ``url``."""
        from botocore.exceptions import BotoCoreError, ClientError, ConnectionError, HTTPClientError

        s = self.settings
        delay = s.backoff_initial_s
        for attempt in range(1, s.attempts + 1):
            try:
                return call()
            except ClientError as exc:
                error = exc.response.get("Error", {})
                code, status = str(error.get("Code", "")), int(exc.response.get("ResponseMetadata", {}).get(
                    "HTTPStatusCode", 0) or 0)
                if code in ("404", "NoSuchKey", "NotFound"):
                    raise TransmitError(f"{url}: no such object") from None
                if code == "NoSuchBucket":
                    raise TransmitError(f"{url}: the bucket does not exist") from None
                if status < 500 or attempt == s.attempts:
                    raise TransmitError(f"{url}: {code or status}: {error.get('Message') or exc}") from None
                reason = f"{code or status}"
            except (ConnectionError, HTTPClientError) as exc:
                if attempt == s.attempts:
                    raise TransmitError(f"S3 endpoint {s.s3.endpoint_url or '(AWS default)'} unreachable for "
                                        f"{url} after {s.attempts} attempts: {exc}") from None
                reason = str(exc)
            except BotoCoreError as exc:
                raise TransmitError(f"{url}: {exc}") from None
            LOG.warning("%s: attempt %d/%d failed (%s); retrying in %.1fs", url, attempt, s.attempts, reason, delay)
            self._sleep(delay)
            delay = min(delay * 2, s.backoff_max_s)
        raise AssertionError("unreachable")


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()
