"""crds/install renders with kubectl, validates offline, and starts GM and LC exactly as written.

The GM and LC processes get the command and env read from the rendered manifests (see
:mod:`tests.kube.manifests`), so a manifest that names an env the code never reads, or misses one
it needs, fails here rather than on a user's cluster.
"""

from __future__ import annotations

import copy
import re
import secrets
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import kubernetes_validate
import pytest

from gm import settings as gm_settings
from lc import settings as lc_settings
from tests.kube import manifests
from tests.support.procs import free_port, running
from tests.support.waiting import eventually

pytestmark = [pytest.mark.processes,  # kubectl kustomize runs as a child process
              pytest.mark.skipif(manifests.kubectl() is None, reason="kubectl (Debian's kubernetes-client) is missing")]

K8S_VERSION = "1.32"
"""The Kubernetes version whose OpenAPI schemas the objects are checked against (kubectl's here)."""


def test_install_renders_every_component() -> None:
    kinds = sorted((doc["kind"], doc["metadata"]["name"]) for doc in manifests.rendered())

    assert [k for k in kinds if k[0] == "CustomResourceDefinition"] == [
        ("CustomResourceDefinition", f"{p}.sedna.io") for p in
        ("datasets", "federatedlearningjobs", "incrementallearningjobs", "jointinferenceservices",
         "lifelonglearningjobs", "models")]
    for wanted in [("Deployment", "sedna-gm"), ("DaemonSet", "sedna-lc"), ("Service", "sedna-gm"),
                   ("ClusterRole", "sedna-gm"), ("ClusterRoleBinding", "sedna-gm"), ("Role", "sedna-gm"),
                   ("RoleBinding", "sedna-gm"), ("Namespace", "sedna"), ("Secret", "sedna-api-token"),
                   ("Secret", "sedna-bootstrap-tokens"), ("Secret", "sedna-bootstrap-token")]:
        assert wanted in kinds
    assert ("Secret", "sedna-node-tokens") not in kinds  # nodes join with bootstrap tokens (docs/identity.md)


def test_every_file_an_env_names_is_a_key_of_the_secret_mounted_there() -> None:
    secrets_by_name = {doc["metadata"]["name"]: doc for doc in manifests.rendered() if doc["kind"] == "Secret"}
    checked = []
    for kind, name in (("Deployment", "sedna-gm"), ("DaemonSet", "sedna-lc")):
        pod = manifests.find(kind, name)["spec"]["template"]["spec"]
        (container,) = pod["containers"]
        volumes = {v["name"]: v for v in pod["volumes"]}
        secret_mounts = {m["mountPath"]: volumes[m["name"]]["secret"]["secretName"]
                         for m in container["volumeMounts"] if "secret" in volumes[m["name"]]}
        for item in container["env"]:
            if not item["name"].endswith("_FILE") or not item["value"].startswith("/etc/sedna/"):
                continue
            directory, _, key = item["value"].rpartition("/")
            secret = secrets_by_name[secret_mounts[directory]]
            assert key in {*secret.get("data", {}), *secret.get("stringData", {})}, (name, item)
            checked.append(item["name"])

    assert sorted(checked) == ["LC_BOOTSTRAP_TOKEN_FILE", "SEDNA_GM_BOOTSTRAP_TOKENS_FILE", "SEDNA_GM_TOKEN_FILE"]


def test_the_placeholder_secrets_let_no_node_join() -> None:
    from gm.identity import bootstrap

    placeholder = manifests.find("Secret", "sedna-bootstrap-tokens")["stringData"]["tokens"]
    assert bootstrap.parse(placeholder, "sedna-bootstrap-tokens") == []


def test_every_rendered_object_validates_against_the_kubernetes_schemas() -> None:
    for doc in manifests.rendered():
        kubernetes_validate.validate(doc, K8S_VERSION, strict=True)


def test_the_validator_catches_a_misspelt_field() -> None:
    deployment = copy.deepcopy(manifests.find("Deployment", "sedna-gm"))
    deployment["spec"]["template"]["spec"]["containers"][0]["envv"] = []

    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(deployment, K8S_VERSION, strict=True)


def test_one_image_everywhere() -> None:
    root = manifests.ROOT
    images = {c["image"] for doc in manifests.rendered() if doc["kind"] in ("Deployment", "DaemonSet")
              for c in [*doc["spec"]["template"]["spec"]["containers"],
                        *doc["spec"]["template"]["spec"].get("initContainers", [])]}
    examples = {line.split("image:", 1)[1].strip().strip('"').rstrip(",")
                for path in (root / "examples").rglob("*.yaml") for line in path.read_text().splitlines()
                if "image:" in line}

    assert images == {"sedna-py:0.1.0"}
    assert {i.split(",")[0].strip('"') for i in examples} == {"sedna-py:0.1.0"}
    assert "docker build -t sedna-py:0.1.0 ." in (root / "Dockerfile").read_text()


def test_dockerignore_keeps_state_venvs_and_caches_out_of_the_image() -> None:
    ignored = set((manifests.ROOT / ".dockerignore").read_text().split())

    assert {".sedna", ".venv", "venv", "**/__pycache__", ".mypy_cache", ".pytest_cache", "lc-state"} <= ignored


class _Recording(dict[str, str]):
    """An environ that remembers every name the code asks for."""

    def __init__(self, values: dict[str, str]) -> None:
        super().__init__(values)
        self.asked: set[str] = set()

    def get(self, key: str, default: Any = None) -> Any:  # type: ignore[override]
        self.asked.add(key)
        return super().get(key, default)

    def __getitem__(self, key: str) -> str:
        self.asked.add(key)
        return super().__getitem__(key)

    def __contains__(self, key: object) -> bool:
        self.asked.add(str(key))
        return super().__contains__(key)


def _env_names(kind: str, name: str) -> set[str]:
    (container,) = manifests.find(kind, name)["spec"]["template"]["spec"]["containers"]
    return {item["name"] for item in container["env"]}


def test_every_gm_env_name_is_one_python_m_gm_reads() -> None:
    environ = _Recording({})
    gm_settings.add_arguments(__import__("argparse").ArgumentParser(), environ)

    assert _env_names("Deployment", "sedna-gm") - environ.asked == set()


def test_every_lc_env_name_is_one_python_m_lc_reads() -> None:
    names = _env_names("DaemonSet", "sedna-lc")
    environ = _Recording({n: "x" for n in names} | {"GM_ADDRESS": "gm:9000", "LC_BIND": "127.0.0.1:9100",
                                                   "LC_BOOTSTRAP_TOKEN": "b"})
    lc_settings.from_args([], environ)

    assert names - environ.asked == set()


@pytest.fixture
def api_server() -> Iterator[Any]:
    from gm import schema
    from gm.cluster import interface
    from tests.gm.kube_emulator import EmulatedApiServer

    validators = {f"{k.group}/{k.version}/{k.plural}": schema.validate for k in interface.SEDNA_KINDS}
    with EmulatedApiServer(validators) as server:
        yield server


def kubeconfig(path: Path, url: str) -> Path:
    """A kubeconfig for the emulated API server: what the in-cluster ServiceAccount config gives a Pod."""
    path.write_text(f"""apiVersion: v1
kind: Config
clusters: [{{name: rig, cluster: {{server: "{url}"}}}}]
users: [{{name: rig, user: {{token: rig}}}}]
contexts: [{{name: rig, context: {{cluster: rig, user: rig}}}}]
current-context: rig
""")
    return path


def test_gm_and_lc_start_from_the_rendered_manifests_and_the_node_joins_once(tmp_path: Path,
                                                                            api_server: Any) -> None:
    ports = {9000: free_port(), 9010: free_port(), 9011: free_port(), 9100: free_port()}
    bootstrap = secrets.token_hex(16)
    gm = manifests.launch("Deployment", "sedna-gm", node="master", root=tmp_path, ports=ports,
                          secrets={"sedna-api-token": {"token": secrets.token_hex(16)},
                                   "sedna-bootstrap-tokens": {"tokens": f"{bootstrap} nodes=edge-0 uses=1\n"}})
    lc = manifests.launch("DaemonSet", "sedna-lc", node="edge-0", root=tmp_path, ports=ports,
                          hosts={"sedna-gm.sedna": "127.0.0.1"},
                          secrets={"sedna-bootstrap-token": {"token": bootstrap}})
    node_dir = tmp_path / "nodes" / "edge-0" / "var/lib/sedna"
    gm_env = {**gm.env, "KUBECONFIG": str(kubeconfig(tmp_path / "kubeconfig", api_server.url))}

    def connected() -> dict[str, Any]:
        return eventually(lambda: (h := httpx.get(lc.probe_url("readinessProbe")).json())["hub"] == "connected"
                          and h, timeout=60, message="LC connected to GM", ignoring=(httpx.TransportError,))

    with running(gm.module, gm_env, tmp_path / "gm.log", port=ports[9000], args=gm.args):
        eventually(lambda: httpx.get(gm.probe_url("readinessProbe")).status_code == 200, timeout=60,
                   message="GM's readiness probe", ignoring=(httpx.TransportError,))
        assert httpx.get(gm.probe_url("livenessProbe")).status_code == 200
        with running(lc.module, lc.env, tmp_path / "lc.log", port=ports[9100], args=lc.args):
            assert connected()["status"] == "ok"
            assert (node_dir / "lc.db").is_file()  # the LC's state lives in the node's hostPath
            credential = node_dir / "node-credential.json"
            assert credential.stat().st_mode & 0o777 == 0o600
            held = credential.read_text()
            # GM keeps the node's credential (its hash) in its own namespace, the one the Role grants
            stored = httpx.get(f"{api_server.url}/api/v1/namespaces/sedna/secrets/sedna-node-edge-0").json()
            assert stored["metadata"]["labels"]["sedna.io/credential"] == "node"
            admin = (node_dir / "admin-token").read_text().strip()
            url = f"http://127.0.0.1:{ports[9100]}/sedna/objects"
            assert httpx.get(url, headers={"Authorization": f"Bearer {admin}"}).status_code == 200
            assert httpx.get(url, headers={"Authorization": f"Bearer {bootstrap}"}).status_code == 401
        # the Pod restarts: the single-use bootstrap token is spent, the credential on the hostPath is reused
        with running(lc.module, lc.env, tmp_path / "lc-2.log", port=ports[9100], args=lc.args):
            connected()
            assert credential.read_text() == held
        assert "joined GM" in (tmp_path / "lc.log").read_text()
        assert "joined GM" not in (tmp_path / "lc-2.log").read_text()


def test_the_docs_create_exactly_the_secrets_the_install_mounts() -> None:
    rendered = {doc["metadata"]["name"]: set(doc["stringData"]) for doc in manifests.rendered()
                if doc["kind"] == "Secret"}
    for page in ("docs/kubernetes.md", "README.md"):
        text = (manifests.ROOT / page).read_text().replace("\\\n", " ")
        created: dict[str, set[str]] = {}
        for found in re.finditer(r"kubectl -n sedna create secret generic ([\w-]+)\s+--from-(?:literal|file)=([\w-]+)=",
                                 text):
            created.setdefault(found[1], set()).add(found[2])
        optional = {name: created.pop(name) for name in list(created) if name in env_from_secrets()}
        assert created == rendered, page
        for name, keys in optional.items():  # env names: only those the code reads
            assert keys <= S3_ENV, f"{page}: secret {name} sets {sorted(keys - S3_ENV)}, which nothing reads"


S3_ENV = {"S3_ENDPOINT_URL", "S3_USE_HTTPS", "ACCESS_KEY_ID", "SECRET_ACCESS_KEY"}


def env_from_secrets() -> set[str]:
    """Secrets the rendered workloads read whole as optional env (``envFrom``)."""
    out = set()
    for doc in manifests.rendered():
        for container in ((doc.get("spec") or {}).get("template") or {}).get("spec", {}).get("containers", []):
            for source in container.get("envFrom", []):
                ref = source.get("secretRef") or {}
                assert ref.get("optional") is True, f"{doc['metadata']['name']}: envFrom {ref} must be optional"
                out.add(ref["name"])
    return out


def test_the_lc_reads_s3_settings_from_an_optional_secret() -> None:
    assert env_from_secrets() == {"sedna-lc-s3"}
    from sedna.common import s3

    settings = s3.S3Settings.from_env({"S3_ENDPOINT_URL": "minio.sedna:9000", "S3_USE_HTTPS": "0",
                                       "ACCESS_KEY_ID": "a", "SECRET_ACCESS_KEY": "b"})
    assert settings.endpoint_url == "http://minio.sedna:9000"
