"""The rendered install manifests (``kubectl kustomize crds/install``) turned into local processes.

A :class:`Launch` is what a kubelet would run for one container of the GM Deployment or the LC
DaemonSet: its command and env exactly as the manifest says, with the three things a Pod has that
a process on this machine has not translated explicitly: volumes become directories (Secret
volumes hold the Secret's keys as files, hostPath volumes one directory per node), service DNS
names and ``0.0.0.0`` become ``127.0.0.1``, and container ports become free ports. Nothing else is
added, so an env name or value the code does not read fails the tests that start these processes.
"""

from __future__ import annotations

import functools
import re
import shutil
import subprocess
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parents[2]
INSTALL = ROOT / "crds" / "install"


class _Loader(yaml.SafeLoader):
    """YAML 1.1's ``=`` value tag read as the string Kubernetes (YAML 1.2) reads it."""


_Loader.add_constructor("tag:yaml.org,2002:value", yaml.constructor.SafeConstructor.construct_yaml_str)


def kubectl() -> str | None:
    """Path of ``kubectl`` (Debian's kubernetes-client package), or None."""
    return shutil.which("kubectl")


@functools.lru_cache(maxsize=1)
def rendered_text() -> str:
    """``kubectl kustomize crds/install`` output; raises with kubectl's stderr on failure."""
    exe = kubectl()
    if exe is None:
        raise RuntimeError("kubectl is not installed (apt-get install kubernetes-client)")
    done = subprocess.run([exe, "kustomize", str(INSTALL)], capture_output=True, text=True, timeout=120)
    if done.returncode != 0:
        raise RuntimeError(f"kubectl kustomize {INSTALL} failed: {done.stderr.strip()}")
    return done.stdout


def rendered() -> list[dict[str, Any]]:
    """Every object of the rendered install."""
    return [doc for doc in yaml.load_all(rendered_text(), Loader=_Loader) if doc]


def find(kind: str, name: str) -> dict[str, Any]:
    """The rendered object of ``kind`` named ``name``."""
    for doc in rendered():
        if doc["kind"] == kind and doc["metadata"]["name"] == name:
            return doc
    raise KeyError(f"{kind}/{name} is not in the rendered install")


def _secret_data(secret: Mapping[str, Any]) -> dict[str, str]:
    import base64

    out = {k: base64.b64decode(v).decode() for k, v in (secret.get("data") or {}).items()}
    out.update(secret.get("stringData") or {})
    return out


@dataclass
class Launch:
    """One container of a rendered workload, ready to run as ``python -m <module>`` here."""

    module: str
    args: list[str]
    env: dict[str, str]
    ports: dict[str, int]
    """Container port name (and number, as a string) -> the local port it was given."""
    container: dict[str, Any] = field(repr=False)

    def probe_url(self, probe: str) -> str:
        """The URL of the container's ``readinessProbe`` / ``livenessProbe`` httpGet."""
        http = self.container[probe]["httpGet"]
        return f"http://127.0.0.1:{self.ports[str(http['port'])]}{http.get('path', '/')}"


def launch(kind: str, name: str, *, node: str, root: Path, ports: Mapping[int, int],
           secrets: Mapping[str, Mapping[str, str]] | None = None,
           hosts: Mapping[str, str] | None = None) -> Launch:
    """How a kubelet on ``node`` would run the first container of ``kind/name``, translated (module doc).

    ``ports`` maps every port the manifests name to a free local one; ``secrets`` overrides the
    rendered Secrets' data by name (the placeholders are meant to be replaced); ``hosts`` maps
    Service DNS names (``sedna-gm.sedna``) to 127.0.0.1. Volumes are directories under ``root``.
    """
    workload = find(kind, name)
    pod = workload["spec"]["template"]["spec"]
    (container,) = pod["containers"]
    command = [*container.get("command", []), *container.get("args", [])]
    if command[:2] != ["python", "-m"]:
        raise ValueError(f"{kind}/{name}: the rig runs `python -m MODULE` commands, got {command}")
    secret_data = {doc["metadata"]["name"]: _secret_data(doc) for doc in rendered() if doc["kind"] == "Secret"}
    secret_data.update({k: dict(v) for k, v in (secrets or {}).items()})
    mounts = _mount_volumes(pod, container, node, f"{name}-{node}", root, secret_data)

    def translate(value: str) -> str:
        for mount_path, local in sorted(mounts.items(), key=lambda kv: -len(kv[0])):
            if value == mount_path or value.startswith(mount_path.rstrip("/") + "/"):
                return str(local) + value[len(mount_path):]
        for host, address in (hosts or {}).items():
            value = re.sub(rf"(?<![\w.-]){re.escape(host)}(?=[:/]|$)", address, value)
        value = re.sub(r"(?<![\d.])0\.0\.0\.0(?![\d.])", "127.0.0.1", value)  # loopback only, never all
        if value.isdigit() and int(value) in ports:
            return str(ports[int(value)])
        return re.sub(r"(?<=:)(\d+)\b", lambda m: str(ports.get(int(m[1]), m[1])), value)

    env: dict[str, str] = {}
    for item in container.get("env", []):
        if "value" in item:
            env[item["name"]] = translate(str(item["value"]))
            continue
        source = item["valueFrom"]
        if "fieldRef" in source:
            path = source["fieldRef"]["fieldPath"]
            known = {"spec.nodeName": node, "metadata.name": f"{name}-{node}",
                     "metadata.namespace": workload["metadata"]["namespace"], "status.hostIP": "127.0.0.1"}
            env[item["name"]] = known[path]
        else:
            ref = source["secretKeyRef"]
            env[item["name"]] = secret_data[ref["name"]][ref["key"]]
    local_ports: dict[str, int] = {}
    for spec in container.get("ports", []):
        mapped = ports.get(int(spec["containerPort"]), int(spec["containerPort"]))
        local_ports[str(spec["containerPort"])] = mapped
        if "name" in spec:
            local_ports[spec["name"]] = mapped
    return Launch(command[2], command[3:], env, local_ports, container)


def _mount_volumes(pod: Mapping[str, Any], container: Mapping[str, Any], node: str, pod_name: str, root: Path,
                   secret_data: Mapping[str, Mapping[str, str]]) -> dict[str, Path]:
    volumes = {v["name"]: v for v in pod.get("volumes", [])}
    out: dict[str, Path] = {}
    for mount in container.get("volumeMounts", []):
        volume = volumes[mount["name"]]
        if "hostPath" in volume:
            local = root / "nodes" / node / volume["hostPath"]["path"].strip("/")
        elif "secret" in volume:
            local = root / "pods" / pod_name / "secrets" / volume["name"]
            local.mkdir(parents=True, exist_ok=True)
            for key, text in secret_data[volume["secret"]["secretName"]].items():
                (local / key).write_text(text)
                (local / key).chmod(0o400)
        else:  # emptyDir
            local = root / "pods" / pod_name / "volumes" / volume["name"]
        local.mkdir(parents=True, exist_ok=True)
        out[mount["mountPath"]] = local
    return out
