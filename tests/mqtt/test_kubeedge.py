"""KubeEdge mapper updates as inference input: decoding, settings, and the gateway against mosquitto."""

from __future__ import annotations

import json

import numpy as np
import pytest

from sedna.common.config import WorkerConfig
from sedna.common.errors import ConfigError
from sedna.service.mqtt import DeviceGateway, MqttSettings, PayloadError
from sedna.service.mqtt.kubeedge import KubeEdgeDecoder, device_of, is_kubeedge_topic
from sedna.service.mqtt.testing import argmax_infer
from tests.mqtt.devices import Device

DATA = "$ke/events/device/{}/data/update"
TWIN = "$hw/events/device/{}/twin/update"


def data_update(event_id: str = "", timestamp: int | None = 1700000000123, **values: str) -> bytes:
    body: dict[str, object] = {"event_id": event_id, "data": {
        name: {"value": value, "metadata": {"type": "string", "timestamp": 1700000000000}}
        for name, value in values.items()}}
    if timestamp is not None:
        body["timestamp"] = timestamp
    return json.dumps(body).encode()


def twin_update(event_id: str = "", timestamp: int = 1700000000456, expected_only: bool = False,
                **values: str) -> bytes:
    side = "expected" if expected_only else "actual"
    return json.dumps({"event_id": event_id, "timestamp": timestamp, "twin": {
        name: {side: {"value": value}, "metadata": {"type": "Updated"}} for name, value in values.items()}}).encode()


class TestDecoding:
    def test_one_property_holding_a_json_list_is_one_row(self) -> None:
        decoder = KubeEdgeDecoder(("pixels",))
        request = decoder.decode(DATA.format("cam-1"), data_update("ev-7", pixels=json.dumps([0.0, 0.5, 1.0])))

        assert request is not None and request.id == "ev-7"
        assert request.tensor.dtype == np.float32 and request.tensor.tolist() == [[0.0, 0.5, 1.0]]

    def test_several_numeric_twin_properties_form_a_row_in_the_configured_order(self) -> None:
        decoder = KubeEdgeDecoder(("temperature", "humidity"), dtype="FP64")
        request = decoder.decode(TWIN.format("thermo-2"), twin_update(humidity="55", temperature="21.5", other="x"))

        assert request is not None and request.id == "thermo-2@1700000000456"
        assert request.tensor.dtype == np.float64 and request.tensor.tolist() == [[21.5, 55.0]]

    def test_nested_lists_keep_their_shape(self) -> None:
        request = KubeEdgeDecoder(("m",)).decode(DATA.format("d"), data_update(m="[[1, 2], [3, 4]]"))

        assert request is not None and request.tensor.shape == (2, 2)

    def test_updates_without_the_input_are_not_requests(self) -> None:
        decoder = KubeEdgeDecoder(("temperature",))

        assert decoder.decode(TWIN.format("d"), twin_update(status="on")) is None
        assert decoder.decode(TWIN.format("d"), twin_update(expected_only=True, temperature="20")) is None
        assert decoder.decode(DATA.format("d"), b'{"event_id": "", "timestamp": 1}') is None

    def test_a_missing_property_is_named_with_the_request_id(self) -> None:
        with pytest.raises(PayloadError) as caught:
            KubeEdgeDecoder(("temperature", "humidity")).decode(TWIN.format("d"), twin_update("e1", temperature="2"))

        assert caught.value.code == "bad_data" and caught.value.request_id == "e1"
        assert "'humidity'" in str(caught.value) and "missing" in str(caught.value)

    @pytest.mark.parametrize(("properties", "values", "fragment"), [
        (("t",), {"t": "warm"}, "'t': 'warm' is not a number"),
        (("t",), {"t": "[[1, 2], [3]]"}, "'t': not a number or a rectangular list"),
        (("t", "h"), {"t": "[1, 2]", "h": "3"}, "'t': '[1, 2]' is not a number"),
        (("t",), {"t": "true"}, "'t': 'true' is not a number"),
    ])
    def test_a_value_that_is_not_numeric_is_named(self, properties, values, fragment) -> None:
        with pytest.raises(PayloadError) as caught:
            KubeEdgeDecoder(properties).decode(DATA.format("d"), data_update("e2", **values))

        assert caught.value.code == "bad_data" and fragment in str(caught.value)

    def test_malformed_json_is_a_bad_header(self) -> None:
        with pytest.raises(PayloadError) as caught:
            KubeEdgeDecoder(("t",)).decode(DATA.format("d"), b"{not json")

        assert caught.value.code == "bad_header" and caught.value.request_id is None

    def test_without_event_id_or_timestamp_every_update_gets_its_own_id(self) -> None:
        decoder = KubeEdgeDecoder(("t",))
        first = decoder.decode(DATA.format("d"), data_update(timestamp=None, t="1"))
        second = decoder.decode(DATA.format("d"), data_update(timestamp=None, t="1"))

        assert first is not None and second is not None and first.id != second.id

    def test_topics(self) -> None:
        assert is_kubeedge_topic(DATA.format("a")) and is_kubeedge_topic(TWIN.format("a"))
        assert not is_kubeedge_topic("$hw/events/device/a/twin/update/delta")
        assert not is_kubeedge_topic("sedna/default/s/request/a")
        assert device_of(TWIN.format("pump-9")) == "pump-9"


class TestSettings:
    def test_env_turns_the_adapter_on_with_its_properties(self) -> None:
        config = WorkerConfig.from_env({"MQTT_BROKER": "127.0.0.1:1883", "MQTT_KUBEEDGE_DEVICES": "true",
                                        "MQTT_KUBEEDGE_PROPERTIES": "temperature, humidity",
                                        "MQTT_KUBEEDGE_DTYPE": "FP64"})
        settings = MqttSettings.from_config(config)

        assert settings.kubeedge_devices is True
        assert settings.kubeedge_properties == ("temperature", "humidity") and settings.kubeedge_dtype == "FP64"

    def test_off_by_default(self) -> None:
        settings = MqttSettings.from_config(WorkerConfig.from_env({"MQTT_BROKER": "127.0.0.1:1883"}))

        assert settings.kubeedge_devices is False and settings.kubeedge_properties == ()

    @pytest.mark.parametrize(("env", "message"), [
        ({"MQTT_KUBEEDGE_DEVICES": "true"}, "MQTT_KUBEEDGE_PROPERTIES is empty"),
        ({"MQTT_KUBEEDGE_DEVICES": "sure"}, "MQTT_KUBEEDGE_DEVICES='sure' is not a boolean"),
    ])
    def test_bad_env_is_named(self, env: dict[str, str], message: str) -> None:
        config = WorkerConfig.from_env({"MQTT_BROKER": "127.0.0.1:1883", **env})

        with pytest.raises(ConfigError, match=message):
            MqttSettings.from_config(config)

    def test_an_unknown_dtype_stops_the_gateway_from_being_built(self) -> None:
        settings = MqttSettings(kubeedge_devices=True, kubeedge_properties=("a",), kubeedge_dtype="BOGUS")

        with pytest.raises(ConfigError, match="MQTT_KUBEEDGE_DTYPE: field 'dtype': unknown dtype 'BOGUS'"):
            DeviceGateway(argmax_infer(), settings, "default", "s")


@pytest.mark.mqtt
@pytest.mark.processes
class TestGateway:
    def test_a_data_update_is_answered_on_the_device_result_topic(self, start_gateway, device: Device) -> None:
        gateway = start_gateway(kubeedge_devices=True, kubeedge_properties=("values",))
        device.client.publish(DATA.format("cam-1"), data_update("ev-1", values="[0.1, 0.9, 0.2]"), qos=1)

        [answer] = device.results(1, topic=device.topics.result("cam-1"))

        assert answer == {**answer, "id": "ev-1", "ok": True, "result": [1], "computed_at": "edge"}
        assert gateway.stats()["answered"] == 1

    def test_twin_updates_are_served_once_and_others_ignored(self, start_gateway, device: Device) -> None:
        gateway = start_gateway(kubeedge_devices=True, kubeedge_properties=("a", "b"))
        topic = TWIN.format("thermo-1")
        result = device.topics.result("thermo-1")
        device.client.publish(topic, twin_update(status="on"), qos=1)  # not an input: ignored
        device.client.publish(topic, twin_update("t-1", a="1", b="7"), qos=1)
        device.client.publish(topic, twin_update("t-1", a="1", b="7"), qos=1)  # re-delivery: answered once
        device.client.publish(topic, twin_update("t-2", a="9", b="oops"), qos=1)

        served, refused = device.results(2, topic=result)
        late = device.quiet(result, 0.4)

        assert served == {**served, "id": "t-1", "ok": True, "result": [1]}
        assert refused["id"] == "t-2" and refused["code"] == "bad_data" and "'b'" in refused["error"]
        assert late == []
        stats = gateway.stats()
        assert stats["ignored"] == 1 and stats["duplicates"] == 1 and stats["errors"] == {"bad_data": 1}

    def test_without_the_flag_mapper_topics_are_not_served(self, start_gateway, device: Device) -> None:
        gateway = start_gateway()
        device.client.publish(DATA.format("cam-2"), data_update("ev-2", values="[1, 0]"), qos=1)

        assert device.quiet(device.topics.result("cam-2"), 0.4) == []
        assert gateway.subscriptions == [f"sedna/default/{device.topics.service}/request/+"]
