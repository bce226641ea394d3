"""The embedded MQTT broker with a password file refuses every client without a listed username and password.

``sedna local up`` runs it this way (``--password-file <state>/mqtt-passwords``); the broker used to
accept anonymous clients, so any local process could read device frames or publish as a device.
Real broker (amqtt in a thread), real paho clients over 127.0.0.1.
"""

from __future__ import annotations

import queue
import subprocess
import sys
from pathlib import Path

import paho.mqtt.client as mqtt
import pytest

from sedna.service.mqtt import EmbeddedBroker
from tests.support.procs import free_port

PASSWORDS = "sedna-workers:s3cret-workers\nsedna-devices:s3cret-devices\n"


def connack(port: int, username: str | None, password: str | None) -> int:
    """The CONNACK return code the broker answers a CONNECT with (0: accepted)."""
    answers: queue.Queue[int] = queue.Queue()
    client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=f"probe-{username}", protocol=mqtt.MQTTv311)
    if username is not None:
        client.username_pw_set(username, password)
    client.on_connect = lambda c, u, flags, reason, props: answers.put(reason.value)
    client.on_disconnect = lambda c, u, flags, reason, props: answers.put(reason.value or 5)
    client.connect("127.0.0.1", port)
    client.loop_start()
    try:
        return answers.get(timeout=10)
    finally:
        client.disconnect()
        client.loop_stop()


@pytest.fixture
def password_file(tmp_path: Path) -> Path:
    path = tmp_path / "mqtt-passwords"
    path.write_text(PASSWORDS)
    return path


def test_only_listed_clients_with_their_password_connect(password_file: Path) -> None:
    with EmbeddedBroker(port=0, password_file=str(password_file)) as broker:
        assert connack(broker.port, None, None) != 0  # anonymous
        assert connack(broker.port, "sedna-devices", "wrong") != 0
        assert connack(broker.port, "sedna-workers", "s3cret-devices") != 0  # another identity's password
        assert connack(broker.port, "nobody", "s3cret-devices") != 0
        assert connack(broker.port, "sedna-devices", "s3cret-devices") == 0
        assert connack(broker.port, "sedna-workers", "s3cret-workers") == 0


def test_without_a_password_file_anonymous_clients_are_allowed() -> None:
    with EmbeddedBroker(port=0) as broker:
        assert connack(broker.port, None, None) == 0


@pytest.mark.parametrize(("content", "where"), [("sedna-devices\n", ":1:"), ("# only a comment\n", "no USER:PASSWORD"),
                                                ("a:b\n:nouser\n", ":2:")])
def test_a_malformed_password_file_is_refused_at_start_naming_the_line(tmp_path: Path, content: str,
                                                                        where: str) -> None:
    path = tmp_path / "mqtt-passwords"
    path.write_text(content)
    with pytest.raises(RuntimeError, match=where):
        EmbeddedBroker(port=0, password_file=str(path)).start()


@pytest.mark.processes
def test_the_runnable_broker_takes_the_password_file_and_reports_a_bad_one(password_file: Path,
                                                                            tmp_path: Path) -> None:
    bad = tmp_path / "bad"
    bad.write_text("no separator\n")
    done = subprocess.run([sys.executable, "-m", "sedna.service.mqtt.broker", "--port", str(free_port()),
                           "--password-file", str(bad)], capture_output=True, text=True, timeout=60)
    assert done.returncode == 1 and f"{bad}:1: expected USER:PASSWORD" in done.stderr


def test_the_protocol_probe_of_a_client_with_credentials_gets_an_answer(password_file: Path) -> None:
    # amqtt never answered an MQTT 5 probe that carried a username: the edge workers of `sedna local up`
    # (protocol auto) stayed offline once its broker required passwords
    from sedna.service.mqtt import MqttSettings
    from sedna.service.mqtt.connection import detect_protocol

    with EmbeddedBroker(port=0, password_file=str(password_file)) as broker:
        settings = MqttSettings(host="127.0.0.1", port=broker.port, username="sedna-workers", password="s3cret-workers")
        assert detect_protocol(settings, timeout=5) == "3.1.1"
