"""The worker env contract, Sedna's parameter look-up, and the plug-in registry."""

from __future__ import annotations

import pytest

from sedna.common.class_factory import ClassFactory, ClassType
from sedna.common.config import AlgorithmSpec, Context, WorkerConfig, parse_parameters
from sedna.common.errors import ConfigError, RegistryError


def test_config_is_read_from_the_given_mapping_not_at_import() -> None:
    cfg = WorkerConfig.from_env({"SERVICE_NAME": "ji", "BIG_MODEL_PORT": "6000", "MODEL_URLS": "a.onnx; b.onnx;"})
    assert (cfg.service_name, cfg.big_model_port, cfg.model_urls) == ("ji", 6000, ["a.onnx", "b.onnx"])
    assert cfg.owner_name == "ji"
    assert WorkerConfig.from_env({}).big_model_bind_ip == "127.0.0.1"


@pytest.mark.parametrize(("env", "message"), [
    ({"BIG_MODEL_PORT": "five"}, "BIG_MODEL_PORT='five' is not an integer"),
    ({"MODEL_HOT_UPDATE": "maybe"}, "MODEL_HOT_UPDATE='maybe' is not a boolean"),
    ({"MINING_MODE": "guess"}, "MINING_MODE='guess' is not one of"),
    ({"BIG_MODEL_PROTOCOL": "ws"}, "BIG_MODEL_PROTOCOL='ws'"),
])
def test_malformed_env_names_the_variable(env: dict[str, str], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        WorkerConfig.from_env(env)


def test_poll_period_below_one_falls_back_to_sixty() -> None:
    assert WorkerConfig.from_env({"MODEL_POLL_PERIOD_SECONDS": "0"}).model_poll_period_seconds == 60


def test_get_parameters_looks_up_as_given_then_upper_case() -> None:
    ctx = Context({"batch_size": "32", "EPOCHS": "3"})
    assert ctx.get_parameters("batch_size") == "32"
    assert ctx.get_parameters("epochs") == "3"
    assert ctx.get_parameters("missing", "d") == "d"


def test_hem_spec_from_env_with_code_overrides() -> None:
    ctx = Context({"HEM_NAME": "IBT", "HEM_PARAMETERS": '[{"key": "threshold_img", "value": "0.9"},'
                                                        ' {"key": "threshold_box", "value": "0.5"}]'})
    spec = ctx.get_algorithm_from_api("HEM", threshold_img=0.7)
    assert spec == AlgorithmSpec("IBT", {"threshold_img": 0.7, "threshold_box": 0.5})
    assert Context({}).get_algorithm_from_api("HEM") is None


@pytest.mark.parametrize(("raw", "message"), [
    ("[{", "HEM_PARAMETERS is not valid JSON"),
    ('"x"', "must be a JSON list"),
    ('[{"value": 1}]', r"HEM_PARAMETERS\[0\] must be an object with 'key'"),
])
def test_malformed_hem_parameters(raw: str, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        parse_parameters(raw)


class _Thing:
    pass


class _Other:
    pass


def test_registering_a_second_class_under_a_taken_name_is_an_error() -> None:
    ClassFactory.register_cls(_Thing, ClassType.GENERAL, "test-thing")
    try:
        ClassFactory.register_cls(_Thing, ClassType.GENERAL, "test-thing")  # same class again: fine
        with pytest.raises(RegistryError, match="'test-thing' is already registered"):
            ClassFactory.register_cls(_Other, ClassType.GENERAL, "test-thing")
        assert ClassFactory.get_cls(ClassType.GENERAL, "test-thing") is _Thing
    finally:
        ClassFactory.unregister(ClassType.GENERAL, "test-thing")


def test_unknown_name_suggests_a_close_one() -> None:
    with pytest.raises(RegistryError, match="Did you mean 'IBT'"):
        ClassFactory.get_cls(ClassType.HEM, "IBTT")


def test_typed_parameters_name_the_variable_when_malformed() -> None:
    ctx = Context({"batch_size": "32", "LEARNING_RATE": "0.1", "EPOCHS": "many"})
    assert ctx.get_int("batch_size", 1) == 32
    assert (ctx.get_float("learning_rate", 0.5), ctx.get_int("missing", 7)) == (0.1, 7)
    with pytest.raises(ConfigError, match="env EPOCHS='many' is not an integer"):
        ctx.get_int("epochs", 1)
