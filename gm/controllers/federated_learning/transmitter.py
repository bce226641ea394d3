"""``spec.transmitter`` of a FederatedLearningJob, and the remote URLs its workers download.

Sedna's field: ``transmitter: {ws: {}}`` (the default: models stream through the aggregation
server) or ``transmitter: {s3: {aggDataPath: s3://bucket/prefix, credentialName: <Secret>}}``
(models go through that bucket and only references through the server; see
``sedna.service.aggregation.transmit``). :func:`problems` checks the field (exactly one of the two,
``aggDataPath`` an ``s3://bucket[/prefix]`` URL). :func:`env` is what the aggregation worker and
every training worker get: ``TRANSMITTER``, and with s3 ``AGG_DATA_PATH`` plus the Secret's S3 env
(:func:`gm.workloads.storage.s3_env`: endpoint from its annotations, keys as ``secretKeyRef``, never
copied into the Pod). A job without the field gets no ``TRANSMITTER`` (the SDK's default is ws).

:func:`download_mounts` lists the job's remote inputs - ``PRETRAINED_MODEL_URL`` (both roles) and
``TRAIN_DATASET_URL`` (trainers) when they are ``http(s)://`` or ``s3://`` URLs - that the
storage-initializer fetches before the worker starts. Local paths and ``MODEL_URL`` (where the
workers write the model) are left as they are. Pure functions.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlparse

from gm.cluster.interface import Obj
from gm.controllers.common.problems import Problem
from gm.workloads import storage
from gm.workloads.building import EnvVar, env_value

FIELD = "spec.transmitter"
KINDS = ("ws", "s3")


@dataclass(frozen=True)
class Transmitter:
    """The parsed field: ``kind`` '' (absent), ``ws`` or ``s3``."""

    kind: str = ""
    agg_data_path: str = ""
    credential: str = ""


def parse(job: Obj) -> Transmitter:
    """The job's transmitter (assumes :func:`problems` found none)."""
    spec = (job.get("spec") or {}).get("transmitter")
    if not isinstance(spec, dict) or not spec:
        return Transmitter()
    if "s3" in spec:
        s3 = spec.get("s3") or {}
        return Transmitter("s3", str(s3.get("aggDataPath") or "").strip(), str(s3.get("credentialName") or ""))
    return Transmitter("ws")


def problems(job: Obj) -> list[Problem]:
    """What is wrong with ``spec.transmitter``, each naming its field."""
    spec = (job.get("spec") or {}).get("transmitter")
    if spec is None:
        return []
    if not isinstance(spec, dict):
        return [Problem(FIELD, "must be an object with one of ws or s3")]
    chosen = [k for k in spec if spec.get(k) is not None]
    unknown = [k for k in chosen if k not in KINDS]
    if unknown:
        return [Problem(f"{FIELD}.{unknown[0]}", "unknown transmitter (use ws or s3)")]
    if len(chosen) != 1:
        return [Problem(FIELD, f"exactly one of ws or s3, got {' and '.join(chosen) or 'neither'}")]
    if chosen[0] == "ws":
        return []
    s3 = spec["s3"]
    if not isinstance(s3, dict):
        return [Problem(f"{FIELD}.s3", "must be an object with aggDataPath and credentialName")]
    out: list[Problem] = []
    path = s3.get("aggDataPath")
    parsed = urlparse(path) if isinstance(path, str) else None
    if parsed is None or parsed.scheme != "s3" or not parsed.netloc:
        out.append(Problem(f"{FIELD}.s3.aggDataPath", f"must be an s3://bucket/prefix URL, got {path!r}"))
    cred = s3.get("credentialName")
    if cred is not None and (not isinstance(cred, str) or not cred.strip()):
        out.append(Problem(f"{FIELD}.s3.credentialName", f"must name a Secret, got {cred!r}"))
    return out


def env(transmitter: Transmitter, secrets: Mapping[str, Mapping[str, Any] | None]) -> list[EnvVar]:
    """``TRANSMITTER`` (and ``AGG_DATA_PATH`` + S3 env); raises :class:`~gm.workloads.storage.StorageError`
    naming the URL and the Secret when the credential is unusable."""
    if not transmitter.kind:
        return []
    if transmitter.kind == "ws":
        return [env_value("TRANSMITTER", "ws")]
    creds = storage.s3_env(secrets.get(transmitter.credential), transmitter.credential, transmitter.agg_data_path)
    return [env_value("TRANSMITTER", "s3"), env_value("AGG_DATA_PATH", transmitter.agg_data_path), *creds]


def credential_mount(transmitter: Transmitter) -> list[storage.Mount]:
    """The transmitter's Secret as an (output) mount, so it is read with the others."""
    if transmitter.kind != "s3" or not transmitter.credential:
        return []
    return [storage.Mount("AGG_DATA_PATH", (transmitter.agg_data_path,), transmitter.credential, download=False)]


def download_mounts(pretrained: Obj | None, dataset: Obj | None = None) -> list[storage.Mount]:
    """The remote inputs a worker downloads before it starts (see the module docstring)."""
    out = []
    if pretrained is not None:
        out.append(storage.model_mount("PRETRAINED_MODEL_URL", pretrained))
    if dataset is not None:
        spec = dataset.get("spec") or {}
        out.append(storage.Mount("TRAIN_DATASET_URL", (str(spec.get("url") or ""),),
                                 str(spec.get("credentialName") or "")))
    return [m for m in out if all(storage.is_remote(u) for u in m.urls)]
