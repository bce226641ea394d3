"""Pod volumes and Secret references for the local runtime, which runs containers as plain processes.

A process has no mount namespace, so a container's ``volumeMounts`` are honoured by rewriting paths:
every ``mountPath`` that starts a path in the container's ``env`` values, ``command`` or ``args``
becomes the directory that backs the volume on this machine:

- ``emptyDir``: ``<Pod STATE_DIR>/volumes/<Pod uid>/<volume>``, created on first use and removed with
  the Pod (so a re-created Pod starts empty, as on Kubernetes); every container of the Pod, init
  containers included, sees the same directory;
- ``hostPath``: the host path itself (one machine: the node's file system is this one).

``subPath`` is appended; ``readOnly`` cannot be enforced on a process and is not. Other volume types
are not backed and their mounts are left alone. ``env[].valueFrom.secretKeyRef`` reads the Secret
from the local store (``data`` base64-encoded, or ``stringData``); a missing Secret or key is a
:class:`MissingConfig` (Kubernetes' ``CreateContainerConfigError``) unless the reference is optional.
"""

from __future__ import annotations

import base64
import binascii
import re
from collections.abc import Callable, Mapping
from pathlib import Path

from gm.cluster.interface import SECRET, Invalid, NotFound, Obj
from gm.cluster.local.logs import safe_name

CONFIG_ERROR_REASON = "CreateContainerConfigError"


class MissingConfig(Exception):
    """A container's env names a Secret (or key) that does not exist: it waits until it does."""


def pod_volumes_dir(pod_state: Path, uid: str) -> Path:
    """Where the emptyDir volumes of the Pod ``uid`` live, under its STATE_DIR area."""
    return pod_state / "volumes" / safe_name(uid)


def mounts(pod: Obj, container: Obj, pod_state: Path, where: str) -> dict[str, Path]:
    """``{mountPath: local directory}`` of ``container``'s mounts (emptyDir created); raises :class:`Invalid`."""
    declared = {str(v.get("name")): v for v in (pod.get("spec") or {}).get("volumes") or [] if isinstance(v, Mapping)}
    out: dict[str, Path] = {}
    for i, mount in enumerate(container.get("volumeMounts") or []):
        name, path = str(mount.get("name") or ""), str(mount.get("mountPath") or "")
        volume = declared.get(name)
        if volume is None or not path.startswith("/"):
            field = f"{where}.volumeMounts[{i}]"
            msg = f"no volume named {name!r} in spec.volumes" if volume is None else "mountPath must be absolute"
            raise Invalid(f"{field}: {msg}", [(field, msg)])
        if "emptyDir" in volume:
            local = pod_volumes_dir(pod_state, str(pod["metadata"]["uid"])) / safe_name(name)
            local.mkdir(parents=True, exist_ok=True, mode=0o700)
        elif "hostPath" in volume:
            local = Path(str((volume["hostPath"] or {}).get("path") or "/"))
        else:
            continue
        sub = str(mount.get("subPath") or "").strip("/")
        out[path.rstrip("/") or "/"] = local / sub if sub else local
    return out


def rewriter(mounted: Mapping[str, Path]) -> Callable[[str], str]:
    """A function replacing each mount path (at a path boundary) with its local directory."""
    ordered = sorted(mounted.items(), key=lambda kv: -len(kv[0]))
    patterns = [(re.compile(rf"(?<![\w/.-]){re.escape(path)}(?=/|$|;|:|,|\s)"), str(local))
                for path, local in ordered if path != "/"]

    def rewrite(value: str) -> str:
        for pattern, local in patterns:
            value = pattern.sub(local.replace("\\", "\\\\"), value)
        return value

    return rewrite


def secret_resolver(get: Callable[..., Obj], namespace: str) -> Callable[[Mapping[str, object], str], str | None]:
    """Resolve a ``secretKeyRef`` in ``namespace`` (``get`` is the store's): the value, None when optional and
    absent; raises :class:`MissingConfig` naming the Secret and key."""

    def resolve(ref: Mapping[str, object], where: str) -> str | None:
        name, key, optional = str(ref.get("name") or ""), str(ref.get("key") or ""), bool(ref.get("optional"))
        try:
            secret = get(SECRET, namespace, name)
        except NotFound:
            if optional:
                return None
            raise MissingConfig(f"{where}: secret {name!r} not found in namespace {namespace!r}") from None
        if key in (secret.get("stringData") or {}):
            return str(secret["stringData"][key])
        data = secret.get("data") or {}
        if key not in data:
            if optional:
                return None
            raise MissingConfig(f"{where}: couldn't find key {key!r} in secret {namespace}/{name}")
        try:
            return base64.b64decode(str(data[key]), validate=True).decode()
        except (binascii.Error, UnicodeDecodeError):
            raise MissingConfig(f"{where}: key {key!r} of secret {namespace}/{name} is not base64 text") from None

    return resolve
