"""The credentials ``sedna local up`` keeps in its state dir: private, generated once, kept by restarts."""

from __future__ import annotations

import stat
from pathlib import Path

from sedna.cli import _local_secrets as creds


def test_credentials_are_generated_once_private_and_kept(tmp_path: Path) -> None:
    first = creds.ensure(tmp_path, ["cloud", "edge-0"], embedded_broker=True)
    again = creds.ensure(tmp_path, ["cloud", "edge-0"], embedded_broker=True)

    assert first == again  # an `up` or `restart` never replaces a token its peers hold
    for name in ("token", "worker-tokens", creds.WORKER_SECRETS, creds.MQTT_PASSWORDS):
        assert stat.S_IMODE((tmp_path / name).stat().st_mode) == 0o600, name
    env = first[creds.WORKER_SECRETS]
    assert env["MQTT_USERNAME"] == creds.WORKERS_MQTT_USER
    assert env["MQTT_PASSWORD"] == first[creds.MQTT_PASSWORDS][creds.WORKERS_MQTT_USER]
    assert creds.device_credentials(tmp_path) == (creds.DEVICES_MQTT_USER,
                                                  first[creds.MQTT_PASSWORDS][creds.DEVICES_MQTT_USER])
    assert creds.edge_token(tmp_path) == env["EDGE_TOKEN"] and env["EDGE_TOKEN"] != env["BIG_MODEL_TOKEN"]


def test_a_node_added_gets_its_tokens_and_the_others_keep_theirs(tmp_path: Path) -> None:
    before = creds.ensure(tmp_path, ["cloud"], embedded_broker=True)
    after = creds.ensure(tmp_path, ["cloud", "edge-0"], embedded_broker=True)
    assert after["worker-tokens"]["cloud"] == before["worker-tokens"]["cloud"] and "edge-0" in after["worker-tokens"]


def test_a_bootstrap_token_is_single_use_for_one_node_and_expired_ones_are_dropped(tmp_path: Path) -> None:
    (tmp_path / "bootstrap-tokens").write_text("old expires=1 nodes=edge-0 uses=1\n")
    token = creds.bootstrap_token(tmp_path, "edge-1")
    lines = (tmp_path / "bootstrap-tokens").read_text().splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"{token} ") and "nodes=edge-1 uses=1" in lines[0]
    assert stat.S_IMODE((tmp_path / "bootstrap-tokens").stat().st_mode) == 0o600


def test_with_an_external_broker_workers_get_no_embedded_broker_identity(tmp_path: Path) -> None:
    embedded = creds.ensure(tmp_path, ["cloud"], embedded_broker=True)[creds.WORKER_SECRETS]
    external = creds.ensure(tmp_path, ["cloud"], embedded_broker=False)[creds.WORKER_SECRETS]
    assert "MQTT_USERNAME" not in external and "MQTT_PASSWORD" not in external
    assert external["EDGE_TOKEN"] == embedded["EDGE_TOKEN"]
    assert "MQTT_PASSWORD" not in creds.read_pairs(tmp_path / creds.WORKER_SECRETS)
