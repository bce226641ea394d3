"""The names Sedna programs import behave as Sedna's do (issue 15), read env lazily, and fail clearly."""

from __future__ import annotations

import logging
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from sedna.common.class_factory import ClassFactory, ClassType, resolve_callable
from sedna.common.config import BaseConfig, Context, WorkerConfig
from sedna.common.errors import ConfigError, RegistryError
from sedna.core.incremental_learning import IncrementalLearning
from sedna.core.joint_inference import JointInference


def test_get_parameters_on_the_class_reads_the_env_at_call_time(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("batch_size", "32")
    monkeypatch.setenv("LEARNING_RATE", "0.01")
    monkeypatch.setenv("EMPTY_ONE", "")
    assert Context.get_parameters("batch_size", 1) == "32"
    assert Context.get_parameters("learning_rate") == "0.01"  # then upper-cased, as Sedna
    assert Context.get_parameters("empty_one", "d") == "d"   # an empty value gives the default, as Sedna
    monkeypatch.setenv("batch_size", "64")
    assert Context.get_parameters("batch_size") == "64"       # no snapshot anywhere
    assert Context.get_int("batch_size", 1) == 64
    assert Context({"batch_size": "8"}).get_parameters("batch_size") == "8"  # instances keep their mapping


def test_get_algorithm_from_api_has_sedna_shape_on_the_class(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("HEM_NAME", raising=False)
    assert Context.get_algorithm_from_api("HEM") == {}
    monkeypatch.setenv("HEM_NAME", "IBT")
    monkeypatch.setenv("HEM_PARAMETERS", '[{"key": "threshold_img", "value": "0.5"}]')
    assert Context.get_algorithm_from_api("HEM", threshold_box=0.8) == \
        {"method": "IBT", "param": {"threshold_img": 0.5, "threshold_box": 0.8}}
    assert JointInference.get_hem_algorithm_from_config(threshold_img=0.9) == \
        {"method": "IBT", "param": {"threshold_img": 0.9}}
    assert IncrementalLearning.get_hem_algorithm_from_config() == {"method": "IBT", "param": {"threshold_img": 0.5}}


def test_base_config_attributes_are_read_when_accessed(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    for name in ("TRAIN_DATASET_URL", "JOB_NAME", "PRETRAINED_MODEL_URL", "DATA_PATH_PREFIX"):
        monkeypatch.delenv(name, raising=False)
    assert BaseConfig.train_dataset_url is None and BaseConfig.job_name == "sedna"
    assert (BaseConfig.pretrained_model_url, BaseConfig.data_path_prefix) == ("./", "/home/data")
    monkeypatch.setenv("TRAIN_DATASET_URL", "/data/train.txt")
    assert BaseConfig.train_dataset_url == "/data/train.txt" == BaseConfig().train_dataset_url
    config = BaseConfig()
    config.from_json({"model_url": "/models/out"})
    assert config.model_url == "/models/out" and config.get("model_name", "default") == "default"
    assert {"original_dataset_url", "test_dataset_url", "model_url", "access_key_id"} <= set(config.dict())
    params = tmp_path / "params.yaml"
    params.write_text("epochs: 3\nlayers: [1, 2]\n")
    monkeypatch.setenv("PARAMETERS", str(params))
    assert BaseConfig().parameter == {"epochs": 3, "layers": [1, 2]}
    monkeypatch.setenv("PARAMETERS", "{not json")
    with pytest.raises(ConfigError, match="PARAMETERS is not valid JSON"):
        _ = BaseConfig().parameter


@pytest.mark.processes
def test_importing_sedna_names_reads_no_env_and_configures_no_logging() -> None:
    code = ("import logging, os\n"
            "from sedna.common.config import BaseConfig, Context\n"
            "from sedna.common.log import LOGGER\n"
            "from sedna.common.file_ops import FileOps\n"
            "from sedna.datasources import TxtDataParse\n"
            "assert not logging.getLogger('sedna').handlers and not logging.getLogger().handlers\n"
            "os.environ['MODEL_URL'] = '/set/after/import'\n"
            "assert BaseConfig.model_url == '/set/after/import'\n"
            "LOGGER.info('visible at %s', 'INFO')\n"
            "LOGGER.debug('hidden')\n")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60,
                          env={"PATH": "/usr/bin:/bin", "PYTHONPATH": str(Path(__file__).parents[2])})
    assert done.returncode == 0, done.stderr
    assert "INFO sedna: visible at INFO" in done.stderr and "hidden" not in done.stderr


def test_logger_leaves_a_configured_program_alone(caplog: pytest.LogCaptureFixture) -> None:
    from sedna.common.log import LOGGER

    with caplog.at_level(logging.INFO, logger="sedna"):
        LOGGER.info("through the program's handlers")
    assert caplog.records[-1].getMessage() == "through the program's handlers"
    assert caplog.records[-1].filename == "test_sedna_surface.py"  # the caller, not the adapter


class _MyIBT:
    def __init__(self, **_: Any) -> None:
        pass

    def __call__(self, result: Any) -> bool:
        return True


def test_user_code_may_replace_a_builtin_only_when_it_says_so() -> None:
    builtin = ClassFactory.get_cls(ClassType.HEM, "IBT")
    with pytest.raises(RegistryError, match="pass replace=True"):
        ClassFactory.register_cls(_MyIBT, ClassType.HEM, "IBT")
    with pytest.raises(ValueError, match="already registered"):  # Sedna callers catch ValueError
        ClassFactory.register(ClassType.HEM, alias="IBT")(_MyIBT)
    try:
        ClassFactory.register(ClassType.HEM, alias="IBT", replace=True)(_MyIBT)
        assert ClassFactory.get_cls(ClassType.HEM, "IBT") is _MyIBT
    finally:
        ClassFactory.register_cls(builtin, ClassType.HEM, "IBT", replace=True)


def test_callbacks_by_name() -> None:
    @ClassFactory.register(ClassType.CALLBACK, alias="test-double")
    def double(value: Any) -> Any:
        return value * 2

    try:
        assert resolve_callable("test-double")(4) == 8 and resolve_callable(None) is None
        assert ClassFactory.is_exists(ClassType.CALLBACK) and ClassFactory.is_exists(ClassType.CALLBACK, "test-double")
        with pytest.raises(TypeError, match="expected a callable or a registered"):
            resolve_callable(3)
    finally:
        ClassFactory.unregister(ClassType.CALLBACK, "test-double")


class _EvalByPath:
    """A Sedna-style estimator: no load(); evaluate opens the model it is given."""

    def train(self, train_data: Any, valid_data: Any = None, epochs: int = 1) -> dict[str, float]:
        self.bias = float(np.mean(train_data)) * epochs
        return {"loss": 0.5}

    def save(self, model_path: str) -> None:
        Path(model_path).write_text(str(self.bias))

    def evaluate(self, data: Any, model_path: str, **kwargs: Any) -> dict[str, float]:
        return {"bias": float(Path(model_path).read_text()), "n": float(len(data))}

    def predict(self, data: Any, **kwargs: Any) -> Any:
        return np.asarray(data) + 1


def test_il_evaluate_passes_each_model_path_and_post_process_by_name(tmp_path: Path) -> None:
    new, old = tmp_path / "new.txt", tmp_path / "old.txt"
    new.write_text("2.0")
    old.write_text("1.0")

    @ClassFactory.register(ClassType.CALLBACK, alias="test-add-f1")
    def add_f1(metrics: dict[str, float]) -> dict[str, float]:
        return {**metrics, "f1": metrics["bias"] / 10}

    try:
        il = IncrementalLearning(_EvalByPath, config=WorkerConfig.from_env({"MODEL_URLS": f"{new};{old}"}))
        results = il.evaluate([1, 2, 3], post_process="test-add-f1")
    finally:
        ClassFactory.unregister(ClassType.CALLBACK, "test-add-f1")
    assert [r["url"] for r in results] == [str(new), str(old)]
    assert [r["metrics"] for r in results] == [{"bias": 2.0, "n": 3.0, "f1": 0.2}, {"bias": 1.0, "n": 3.0, "f1": 0.1}]


@pytest.mark.parametrize(("env", "expected"), [
    ({}, "model.onnx"),
    ({"BACKEND_TYPE": "TENSORFLOW"}, "model_finetune_tensorflow.pb"),
    ({"BACKEND_TYPE": "TORCH"}, "model_finetune_pytorch.pth"),
    ({"BACKEND_TYPE": "TORCH", "MODEL_NAME": "helmet.pth"}, "helmet.pth"),
])
def test_il_train_names_its_output_by_sedna_rules(tmp_path: Path, env: dict[str, str], expected: str) -> None:
    out = tmp_path / "out"
    il = IncrementalLearning(_EvalByPath, config=WorkerConfig.from_env({"MODEL_URL": str(out), **env}))
    il.train([1.0, 3.0], epochs=2)
    assert [p.name for p in out.iterdir()] == [expected] and (out / expected).read_text() == "4.0"


def test_il_train_honours_an_explicit_model_path(tmp_path: Path) -> None:
    target = tmp_path / "exact" / "final.bin"
    env = {"MODEL_URL": str(tmp_path / "out"), "model_path": str(target)}
    il = IncrementalLearning(_EvalByPath, config=WorkerConfig.from_env(env))
    il.train([2.0])
    assert target.read_text() == "2.0"


def test_joint_inference_post_process_by_registered_name(tmp_path: Path) -> None:
    @ClassFactory.register(ClassType.CALLBACK, alias="test-top-label")
    def top_label(result: Any) -> int:
        return int(np.argmax(result))

    config = WorkerConfig.from_env({"STATE_DIR": str(tmp_path), "HEM_NAME": "EdgeOnly"})
    try:
        with JointInference(_EvalByPath(), config=config) as ji:
            assert ji.inference(np.array([0.1, 0.7, 0.2]), post_process="test-top-label") == (False, 1, 1, None)
            with pytest.raises(RegistryError, match="no post_process_callback plug-in named 'test-nope'"):
                ji.inference(np.array([1.0]), post_process="test-nope")
    finally:
        ClassFactory.unregister(ClassType.CALLBACK, "test-top-label")
