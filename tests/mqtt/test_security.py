"""Credentials and TLS against a real mosquitto: the right ones serve, wrong ones fail clearly and nothing crashes."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from sedna.service.mqtt import DeviceGateway, MqttSettings
from sedna.service.mqtt.certs import TlsFiles, make_tls_files
from sedna.service.mqtt.simulator import simulate
from sedna.service.mqtt.testing import Mosquitto, argmax_infer, find_mosquitto
from tests.support.waiting import eventually

pytestmark = [pytest.mark.processes, pytest.mark.mqtt,
              pytest.mark.skipif(find_mosquitto() is None, reason="mosquitto binary not installed")]
USERS = {"edge": "s3cret-pw", "device": "d3vice-pw"}


@pytest.fixture(scope="module")
def tls(tmp_path_factory: pytest.TempPathFactory) -> TlsFiles:
    return make_tls_files(tmp_path_factory.mktemp("tls"))


@pytest.fixture(scope="module")
def secured(tmp_path_factory: pytest.TempPathFactory, tls: TlsFiles) -> Iterator[Mosquitto]:
    """mosquitto with a password file and a TLS listener on 127.0.0.1."""
    with Mosquitto(tmp_path_factory.mktemp("secured"), users=USERS, tls=tls) as broker:
        yield broker


@pytest.fixture
def gateways() -> Iterator[Callable[..., DeviceGateway]]:
    made: list[DeviceGateway] = []

    def make(service: str, **settings: object) -> DeviceGateway:
        gateway = DeviceGateway(argmax_infer(), MqttSettings(**settings), "default", service)  # type: ignore[arg-type]
        made.append(gateway)
        return gateway

    yield make
    for gateway in made:
        gateway.stop()


def test_right_credentials_over_tls_serve_devices(secured: Mosquitto, tls: TlsFiles, gateways) -> None:
    gateway = gateways("secure", port=secured.port, username="edge", password=USERS["edge"], tls_ca=str(tls.ca),
                       protocol="5")
    assert gateway.start(10.0), gateway.last_error

    summary = simulate("secure", settings=MqttSettings(port=secured.port, username="device",
                                                       password=USERS["device"], tls_ca=str(tls.ca)), count=20)

    assert summary["answered"] == summary["ok"] == 20 and summary["protocol"] == "5"
    assert gateway.last_error is None and gateway.stats()["answered"] == 20


@pytest.mark.parametrize(("username", "password", "who"), [
    ("edge", "wrong", "refused user 'edge'"),
    ("", "", "refused anonymous clients"),
])
def test_refused_credentials_are_reported_and_nothing_crashes(secured: Mosquitto, tls: TlsFiles, gateways,
                                                              username: str, password: str, who: str) -> None:
    gateway = gateways("refused", port=secured.port, username=username, password=password, tls_ca=str(tls.ca),
                       reconnect_min_delay=0.2, reconnect_max_delay=0.5)

    assert gateway.start(0.0) is False
    eventually(lambda: gateway.last_error, message="the gateway to record why it was refused")
    assert who in gateway.last_error and "MQTT_USERNAME and MQTT_PASSWORD" in gateway.last_error
    assert gateway.stats()["connected"] is False
    gateway.stop()  # a gateway that never connected stops cleanly

    with pytest.raises(ConnectionError, match=who):
        simulate("refused", settings=MqttSettings(port=secured.port, username=username, password=password,
                                                  tls_ca=str(tls.ca)), count=1)


@pytest.mark.parametrize("protocol", ["5", "auto"])
def test_a_broker_certificate_from_another_ca_is_refused_naming_the_ca(secured: Mosquitto, tmp_path: Path, gateways,
                                                                       protocol: str) -> None:
    other = make_tls_files(tmp_path, name="other")
    gateway = gateways("wrong-ca", port=secured.port, username="edge", password=USERS["edge"], tls_ca=str(other.ca),
                       protocol=protocol, reconnect_min_delay=0.2, reconnect_max_delay=0.5)

    assert gateway.start(0.0) is False
    eventually(lambda: gateway.last_error, message="the gateway to record why it was refused")
    assert f"does not verify against MQTT_TLS_CA={str(other.ca)!r}" in gateway.last_error
    assert gateway.last_error.startswith("TLS: the certificate of MQTT broker")
    assert gateway.stats()["connected"] is False


def test_test_certificates_name_the_loopback_address(tls: TlsFiles) -> None:
    from cryptography import x509

    cert = x509.load_pem_x509_certificate(tls.cert.read_bytes())
    names = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert [str(ip) for ip in names.get_values_for_type(x509.IPAddress)] == ["127.0.0.1"]
    assert names.get_values_for_type(x509.DNSName) == ["localhost"]
    assert tls.key.stat().st_mode & 0o077 == 0
