"""Models and data reaching a worker's node, as Sedna injects them (SEDNA-REFERENCE section 2.3).

:func:`plan` rewrites a worker's env that names model or data URLs, and says what its Pod spec
needs (:meth:`Injection.apply`), for both backends:

- a local path becomes a read-only ``hostPath`` mount of its directory on the Pod's node, at
  ``/home/data<dir>``; the env value becomes that path and ``DATA_PATH_PREFIX=/home/data`` is added
  (with ``host_paths`` False, the local backend's case, a local path stays as it is: its workers
  run on the machine that holds it);
- an ``http(s)://`` or ``s3://`` URL is downloaded before the worker starts by the
  ``storage-initializer`` init container (``python -m workers.storage SRC DST ...``, same image)
  into the emptyDir ``sedna-storage-initializer`` at ``/downloads`` (read-only in the workers); the
  env value becomes ``/downloads/<host><path>``. A failed download fails the init container, so the
  worker never starts half-configured;
- an ``s3://`` URL with a ``credentialName`` Secret gets ``S3_ENDPOINT_URL`` and ``S3_USE_HTTPS`` from
  the Secret's ``s3-endpoint`` / ``s3-usehttps`` annotations and ``ACCESS_KEY_ID`` /
  ``SECRET_ACCESS_KEY`` as ``secretKeyRef`` (never copied into the Pod spec); outputs (``download``
  False) stay URLs and the worker itself gets those env.

Pure functions: the caller reads the Secret and reports a missing one (:class:`StorageError`).
"""

from __future__ import annotations

import copy
import hashlib
import posixpath
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlparse

from gm.cluster.interface import Kind
from gm.workloads.building import EnvVar, env_value

SECRET = Kind("", "v1", "Secret", "secrets")
"""The credential Secrets GM reads (get only; ``crds/install/gm-rbac.yaml``)."""
DATA_PREFIX = "/home/data"
DOWNLOADS = "/downloads"
VOLUME = "sedna-storage-initializer"
INIT_CONTAINER = "storage-initializer"
DEFAULT_IMAGE = "sedna-py:0.1.0"
S3_ENDPOINT_ANNOTATION = "s3-endpoint"
S3_USE_HTTPS_ANNOTATION = "s3-usehttps"
CREDENTIAL_KEYS = ("ACCESS_KEY_ID", "SECRET_ACCESS_KEY")


class StorageError(ValueError):
    """A URL or its credential cannot be used; the message names the URL and the reason."""


@dataclass(frozen=True)
class Mount:
    """One env var of the worker that names model or data URLs (several joined with ``;``)."""

    env: str
    urls: tuple[str, ...]
    credential: str = ""
    """Name of the Secret with the S3 credentials ('' for none)."""
    sha256: str = ""
    """Expected sha256 of a single downloaded file ('' for no check)."""
    download: bool = True
    """False for output locations: remote URLs stay URLs (and get credentials), local ones are mounted rw."""


def is_remote(url: str) -> bool:
    """Whether ``url`` is fetched over the network (``http(s)://`` or ``s3://``)."""
    return url.startswith(("http://", "https://", "s3://"))


def download_path(url: str) -> str:
    """Where a remote URL lands in the worker: ``/downloads/<host><path>``."""
    parsed = urlparse(url)
    path = posixpath.normpath("/" + parsed.path.lstrip("/")) if parsed.path not in ("", "/") else ""
    return f"{DOWNLOADS}/{parsed.netloc}{path}" + ("/" if url.endswith("/") and path else "")


def _volume_name(host_dir: str) -> str:
    return "sedna-data-" + hashlib.sha256(host_dir.encode()).hexdigest()[:10]


def _host_dir(path: str, download: bool) -> str:
    """The host directory to mount: a file's parent (a name with a suffix), else the directory itself."""
    clean = posixpath.normpath(path.removeprefix("file://"))
    if download and posixpath.splitext(clean)[1]:
        return posixpath.dirname(clean) or "/"
    return clean


def s3_env(secret: Mapping[str, Any] | None, credential: str, url: str) -> list[EnvVar]:
    """Sedna's S3 env from the ``credentialName`` Secret; raise :class:`StorageError` naming ``url``."""
    if not credential:
        return []
    if secret is None:
        raise StorageError(f"{url}: the credential Secret {credential!r} does not exist")
    annotations = (secret.get("metadata") or {}).get("annotations") or {}
    keys = set(secret.get("data") or {}) | set(secret.get("stringData") or {})
    missing = [k for k in CREDENTIAL_KEYS if k not in keys]
    if missing:
        raise StorageError(f"{url}: the credential Secret {credential!r} has no key {', '.join(missing)}")
    env: list[EnvVar] = []
    if annotations.get(S3_ENDPOINT_ANNOTATION):
        env.append(env_value("S3_ENDPOINT_URL", annotations[S3_ENDPOINT_ANNOTATION]))
    if annotations.get(S3_USE_HTTPS_ANNOTATION):
        env.append(env_value("S3_USE_HTTPS", annotations[S3_USE_HTTPS_ANNOTATION]))
    env += [{"name": k, "valueFrom": {"secretKeyRef": {"name": credential, "key": k}}} for k in CREDENTIAL_KEYS]
    return env


@dataclass
class Injection:
    """What :func:`plan` adds to a Pod spec: the rewritten worker env, volumes and the init container."""

    env: list[EnvVar] = field(default_factory=list)
    volumes: list[dict[str, Any]] = field(default_factory=list)
    mounts: list[dict[str, Any]] = field(default_factory=list)
    init_containers: list[dict[str, Any]] = field(default_factory=list)

    def apply(self, pod_spec: dict[str, Any]) -> None:
        """Add the volumes, the worker mounts and the init container to ``pod_spec`` (env is merged by the caller)."""
        if self.volumes:
            pod_spec.setdefault("volumes", []).extend(copy.deepcopy(self.volumes))
        if self.init_containers:
            pod_spec.setdefault("initContainers", []).extend(copy.deepcopy(self.init_containers))
        for container in pod_spec.get("containers", []):
            if self.mounts:
                container.setdefault("volumeMounts", []).extend(copy.deepcopy(self.mounts))


def plan(env: Sequence[EnvVar], mounts: Sequence[Mount], secrets: Mapping[str, Mapping[str, Any] | None],
         image: str = DEFAULT_IMAGE, host_paths: bool = True) -> Injection:
    """The module docstring's rules for the worker ``env`` (whose ``mount.env`` values are rewritten).

    ``secrets`` maps credential names to Secrets (None: missing). Raises :class:`StorageError` naming
    the URL when a credential is unusable.
    """
    out = Injection()
    init_env: list[EnvVar] = []
    pairs: list[str] = []
    sums: list[str] = []
    host_dirs: dict[str, bool] = {}
    values: dict[str, str] = {}
    for mount in mounts:
        rewritten: list[str] = []
        for url in mount.urls:
            creds = s3_env(secrets.get(mount.credential), mount.credential, url) if url.startswith("s3://") else []
            if not url:
                rewritten.append(url)
            elif is_remote(url) and mount.download:
                if mount.sha256 and len(mount.urls) == 1:
                    sums += ["--sha256", f"{len(pairs) // 2}={mount.sha256}"]
                pairs += [url, download_path(url)]
                init_env += [e for e in creds if e not in init_env]
                rewritten.append(download_path(url))
            elif is_remote(url):
                out.env += [e for e in creds if e not in out.env]
                rewritten.append(url)
            elif not host_paths:
                rewritten.append(url)
            else:
                host_dir = _host_dir(url, mount.download)
                host_dirs[host_dir] = host_dirs.get(host_dir, True) and mount.download
                rewritten.append(DATA_PREFIX + posixpath.normpath(url.removeprefix("file://")))
        values[mount.env] = ";".join(rewritten)
    out.env = [env_value(e["name"], values[e["name"]]) if e["name"] in values else e for e in env] + out.env
    if host_dirs:
        out.env.append(env_value("DATA_PATH_PREFIX", DATA_PREFIX))
    for host_dir, read_only in sorted(host_dirs.items()):
        name = _volume_name(host_dir)
        out.volumes.append({"name": name, "hostPath": {"path": host_dir,
                                                        "type": "Directory" if read_only else "DirectoryOrCreate"}})
        out.mounts.append({"name": name, "mountPath": DATA_PREFIX + host_dir, "readOnly": read_only})
    if pairs:
        out.volumes.append({"name": VOLUME, "emptyDir": {}})
        out.mounts.append({"name": VOLUME, "mountPath": DOWNLOADS, "readOnly": True})
        out.init_containers.append({
            "name": INIT_CONTAINER, "image": image, "command": ["python", "-m", "workers.storage"],
            "args": [*sums, *pairs], "env": init_env, "volumeMounts": [{"name": VOLUME, "mountPath": DOWNLOADS}],
            "terminationMessagePolicy": "FallbackToLogsOnError",  # the failure naming the URL reaches the status
            "resources": {"limits": {"cpu": "1", "memory": "1Gi"}, "requests": {"cpu": "100m", "memory": "128Mi"}},
        })
    return out


def model_mount(env: str, model: Mapping[str, Any] | None) -> Mount:
    """The :class:`Mount` of a Model's ``spec.url`` (with its ``credentialName`` and ``sha256``) as ``env``."""
    spec = (model or {}).get("spec") or {}
    return Mount(env, (str(spec.get("url") or ""),), str(spec.get("credentialName") or ""),
                 str(spec.get("sha256") or ""))


def read_secrets(get: Any, namespace: str, mounts: Sequence[Mount]) -> dict[str, Mapping[str, Any] | None]:
    """The credential Secrets ``mounts`` name, by name (None when missing); ``get`` is ``Cluster.get``."""
    from gm.cluster.interface import NotFound

    out: dict[str, Mapping[str, Any] | None] = {}
    for name in {m.credential for m in mounts if m.credential}:
        try:
            out[name] = get(SECRET, namespace, name)
        except NotFound:
            out[name] = None
    return out
