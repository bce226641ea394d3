"""crds/: one structural CRD per sedna.io kind, and install manifests that grant exactly what GM uses."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

import crds
from gm.cluster import interface

INSTALL = Path(crds.__file__).parent / "install"


def _walk(node: Any, path: str = "") -> list[tuple[str, dict[str, Any]]]:
    out: list[tuple[str, dict[str, Any]]] = []
    if isinstance(node, dict):
        out.append((path, node))
        for name, sub in node.get("properties", {}).items():
            out += _walk(sub, f"{path}.{name}")
        if "items" in node:
            out += _walk(node["items"], f"{path}[]")
    return out


def _docs(name: str) -> list[dict[str, Any]]:
    return [doc for doc in yaml.safe_load_all((INSTALL / name).read_text()) if doc]


def test_one_crd_per_sedna_kind_with_status_short_names_and_columns() -> None:
    by_kind = {crd["spec"]["names"]["kind"]: crd for crd in crds.load_crds()}

    assert set(by_kind) == {kind.kind for kind in interface.SEDNA_KINDS}
    for kind in interface.SEDNA_KINDS:
        spec = by_kind[kind.kind]["spec"]
        (version,) = spec["versions"]
        assert (spec["group"], version["name"], spec["names"]["plural"]) == (kind.group, kind.version, kind.plural)
        assert version["subresources"] == {"status": {}}
        assert version["additionalPrinterColumns"][-1]["jsonPath"] == ".metadata.creationTimestamp"
    assert {k: by_kind[k]["spec"]["names"].get("shortNames") for k in by_kind} == {
        "Dataset": None, "Model": None, "JointInferenceService": ["ji"], "FederatedLearningJob": ["fl"],
        "IncrementalLearningJob": ["il"], "LifelongLearningJob": ["ll"]}
    columns = {k: [c["name"] for c in by_kind[k]["spec"]["versions"][0]["additionalPrinterColumns"]] for k in by_kind}
    assert columns["JointInferenceService"] == ["Phase", "Ready", "Offload", "Inferences", "Age"]
    assert columns["IncrementalLearningJob"] == columns["LifelongLearningJob"] == ["Stage", "State", "Round", "Age"]


def test_schemas_are_structural_and_templates_stay_opaque() -> None:
    for crd in crds.load_crds():
        schema = crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"]
        for path, node in _walk(schema):
            assert "type" in node, f"{crd['metadata']['name']}{path} has no type"
            if path.endswith(".template") or (path.startswith(".status") and path.count(".") == 1):
                assert node == {**node, "type": "object", "x-kubernetes-preserve-unknown-fields": True}, path
                assert "properties" not in node or path.startswith(".status"), path


def test_gm_role_grants_exactly_what_gm_uses_and_lc_gets_no_api_access() -> None:
    role, binding, namespaced, namespaced_binding = _docs("gm-rbac.yaml")
    rules = {(rule["apiGroups"][0], res): sorted(rule["verbs"]) for rule in role["rules"] for res in rule["resources"]}
    crud = sorted(["get", "list", "watch", "create", "update", "patch", "delete"])

    for kind in interface.SEDNA_KINDS:
        assert rules[("sedna.io", kind.plural)] == sorted(["get", "list", "watch", "update", "patch"])
        assert rules[("sedna.io", f"{kind.plural}/status")] == sorted(["get", "update", "patch"])
    assert rules[("", "pods")] == rules[("", "services")] == rules[("apps", "deployments")] == crud
    assert rules[("", "events")] == ["create", "patch"]
    # the hub's sequence mark; the identity watches Nodes (a deleted Node revokes its credential)
    assert rules[("", "nodes")] == ["create", "get", "list", "patch", "update", "watch"]
    assert rules[("", "secrets")] == ["get"]  # credentialName Secrets' S3 endpoint annotations, any namespace
    assert len(rules) == 2 * len(interface.SEDNA_KINDS) + 6
    assert binding["subjects"] == [{"kind": "ServiceAccount", "name": "sedna-gm", "namespace": "sedna"}]
    # node credential Secrets, the identity key and bootstrap uses: GM's own namespace only
    assert (namespaced["kind"], namespaced["metadata"]["namespace"]) == ("Role", "sedna")
    assert [(r["apiGroups"], r["resources"], sorted(r["verbs"])) for r in namespaced["rules"]] == [
        ([""], ["secrets"], sorted(["get", "list", "watch", "create", "update", "delete"]))]
    assert namespaced_binding["kind"] == "RoleBinding"
    assert namespaced_binding["roleRef"] == {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role",
                                             "name": "sedna-gm"}
    assert namespaced_binding["subjects"] == binding["subjects"]
    lc_account = next(d for d in _docs("serviceaccounts.yaml") if d["metadata"]["name"] == "sedna-lc")
    assert lc_account["automountServiceAccountToken"] is False


def test_lc_daemonset_has_host_network_node_name_bootstrap_token_and_state_dir() -> None:
    (daemonset,) = _docs("lc-daemonset.yaml")
    pod = daemonset["spec"]["template"]["spec"]
    (lc,) = pod["containers"]
    env = {e["name"]: e.get("value", e.get("valueFrom")) for e in lc["env"]}

    assert pod["hostNetwork"] is True
    assert env["NODE_NAME"] == {"fieldRef": {"fieldPath": "spec.nodeName"}}
    assert env["LC_BOOTSTRAP_TOKEN_FILE"] == "/etc/sedna/bootstrap/token"
    assert env["LC_STATE_DIR"] == "/var/lib/sedna"  # node-credential.json survives a restart of the Pod
    assert "LC_HUB_TOKEN_FILE" not in env and "LC_HUB_TOKEN" not in env
    assert {"name": "state", "hostPath": {"path": "/var/lib/sedna", "type": "DirectoryOrCreate"}} in pod["volumes"]
    assert {"name": "bootstrap-token", "secret": {"secretName": "sedna-bootstrap-token", "defaultMode": 0o400}} \
        in pod["volumes"]
    assert lc["command"] == ["python", "-m", "lc"]


def test_kustomizations_list_every_manifest() -> None:
    install = yaml.safe_load((INSTALL / "kustomization.yaml").read_text())["resources"]
    top = yaml.safe_load((INSTALL.parent / "kustomization.yaml").read_text())["resources"]

    manifests = [p.name for p in INSTALL.glob("*.yaml") if p.name != "kustomization.yaml"]

    bases = yaml.safe_load((INSTALL.parent / "bases" / "kustomization.yaml").read_text())["resources"]

    assert sorted(install) == sorted(["../bases", *manifests])
    assert top == ["bases"]
    assert sorted(bases) == [p.name for p in crds.crd_paths()]
