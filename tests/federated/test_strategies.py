"""One contract over every registered aggregation strategy, plus hand-computed cases."""

from __future__ import annotations

import random

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from sedna.algorithms.aggregation import ClientInfo, FitRes, Strategy, create_strategy
from sedna.common.class_factory import ClassFactory, ClassType
from sedna.common.errors import ConfigError, RegistryError

ALL = ClassFactory.names(ClassType.FL_AGG)
MEAN_TYPE = {"FedAvg", "FedProx", "FedMedian", "FedTrimmedAvg", "Krum", "MultiKrum"}
SERVER_OPTIMIZERS = {"FedAvgM", "FedAdam", "FedYogi", "FedAdagrad"}
FAST = settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def _res(updates: list[dict[str, np.ndarray]], samples: list[int] | None = None) -> list[FitRes]:
    samples = samples or [10] * len(updates)
    return [FitRes(f"c{i}", n, u) for i, (u, n) in enumerate(zip(updates, samples, strict=True))]


def test_every_registered_strategy_is_covered_by_the_contract() -> None:
    assert set(ALL) == MEAN_TYPE | SERVER_OPTIMIZERS
    assert len(ALL) == 10


shapes = st.lists(st.integers(1, 5), min_size=0, max_size=3).map(tuple)
values = st.floats(-1e3, 1e3, allow_nan=False, width=32)


@st.composite
def model(draw: st.DrawFn) -> dict[str, np.ndarray]:
    out = {}
    for i in range(draw(st.integers(1, 3))):
        shape = draw(shapes)
        flat = draw(st.lists(values, min_size=int(np.prod(shape)), max_size=int(np.prod(shape))))
        out[f"t{i}"] = np.array(flat, np.float32).reshape(shape)
    return out


@pytest.mark.parametrize("name", ALL)
@FAST
@given(update=model(), clients=st.integers(1, 6))
def test_identical_updates_are_a_fixed_point(name: str, update: dict[str, np.ndarray], clients: int) -> None:
    strategy = create_strategy(name)
    updates = [{k: v.copy() for k, v in update.items()} for _ in range(clients)]
    if name in MEAN_TYPE:
        glob = {k: np.zeros_like(v) for k, v in update.items()}  # the result must not depend on it
    else:
        glob = {k: v.copy() for k, v in update.items()}  # updates equal the global model: no pseudo-gradient
    merged, _ = strategy.aggregate_fit(1, glob, _res(updates), [])
    assert merged is not None and list(merged) == list(update)
    for k, v in update.items():
        assert merged[k].shape == v.shape and merged[k].dtype == v.dtype
        np.testing.assert_allclose(merged[k], v, rtol=1e-5, atol=1e-3)
    for u in updates:  # inputs untouched
        for k in update:
            np.testing.assert_array_equal(u[k], update[k])


@pytest.mark.parametrize("name", ALL)
def test_no_results_keep_the_model(name: str) -> None:
    assert create_strategy(name).aggregate_fit(1, {"w": np.ones(2, np.float32)}, [], [])[0] is None


@pytest.mark.parametrize("name", ["FedMedian", "FedTrimmedAvg"])
@FAST
@given(honest=st.lists(st.lists(st.floats(-1, 1, width=32), min_size=3, max_size=3), min_size=4, max_size=8),
       outlier=st.floats(-1e30, 1e30, allow_nan=False).map(lambda v: float(np.float32(v))))
def test_robust_means_bound_one_outlier(name: str, honest: list[list[float]], outlier: float) -> None:
    ups = [{"w": np.array(h, np.float32)} for h in honest] + [{"w": np.full(3, outlier, np.float32)}]
    merged, _ = create_strategy(name).aggregate_fit(1, ups[0], _res(ups), [])
    stack = np.array(honest, np.float32)
    assert merged is not None
    assert np.all(merged["w"] >= stack.min(0) - 1e-6) and np.all(merged["w"] <= stack.max(0) + 1e-6)


@FAST
@given(centre=st.lists(st.floats(-10, 10, width=32), min_size=4, max_size=4),
       noise=st.lists(st.lists(st.floats(-1, 1, width=32), min_size=4, max_size=4), min_size=3, max_size=7),
       direction=st.sampled_from([-1.0, 1.0]), slot=st.integers(0, 7))
def test_krum_picks_an_honest_update(centre: list[float], noise: list[list[float]], direction: float,
                                     slot: int) -> None:
    honest = [np.array(centre, np.float32) + np.array(n, np.float32) for n in noise]
    ups = [{"w": h} for h in honest]
    ups.insert(slot % (len(ups) + 1), {"w": np.array(centre, np.float32) + np.float32(direction * 1e4)})
    picked, _ = create_strategy("Krum", num_malicious_clients=1).aggregate_fit(1, ups[0], _res(ups), [])
    assert picked is not None and any(np.array_equal(picked["w"], h) for h in honest)
    multi, _ = create_strategy("MultiKrum", num_malicious_clients=1).aggregate_fit(1, ups[0], _res(ups), [])
    stack = np.array(honest)
    assert multi is not None and np.all(multi["w"] >= stack.min(0) - 1e-4) and np.all(multi["w"] <= stack.max(0) + 1e-4)


def test_fedavg_weights_by_sample_count_exactly() -> None:
    ups = [{"w": np.array([0.0, 0.0], np.float32), "n": np.array([4], np.int64)},
           {"w": np.array([1.0, 2.0], np.float32), "n": np.array([8], np.int64)}]
    merged, metrics = create_strategy("FedAvg").aggregate_fit(1, ups[0], _res(ups, [1, 3]), [])
    assert merged is not None
    np.testing.assert_array_equal(merged["w"], np.array([0.75, 1.5], np.float32))
    assert merged["w"].dtype == np.float32
    assert merged["n"].tolist() == [7] and merged["n"].dtype == np.int64  # 0.25*4 + 0.75*8
    assert metrics == {}


def test_fedavg_fp16_accumulates_in_fp32() -> None:
    ups = [{"w": np.full(3, 2048.0, np.float16)}, {"w": np.full(3, 2049.0, np.float32).astype(np.float16)}]
    merged, _ = create_strategy("FedAvg").aggregate_fit(1, ups[0], _res(ups), [])
    assert merged is not None and merged["w"].dtype == np.float16


def test_median_and_trimmed_mean_hand_computed() -> None:
    ups = [{"w": np.array([v], np.float32)} for v in (1.0, 2.0, 3.0, 4.0, 100.0)]
    assert create_strategy("FedMedian").aggregate_fit(1, ups[0], _res(ups), [])[0]["w"].tolist() == [3.0]
    assert create_strategy("FedTrimmedAvg", beta=0.2).aggregate_fit(1, ups[0], _res(ups), [])[0]["w"].tolist() == [3.0]
    assert create_strategy("FedTrimmedAvg", beta=0.0).aggregate_fit(1, ups[0], _res(ups), [])[0]["w"].tolist() == [22.0]


def test_server_optimizers_hand_computed_first_steps() -> None:
    zero, one = {"w": np.zeros(1, np.float32)}, [{"w": np.ones(1, np.float32)}]
    cases = {"FedAdam": 0.1, "FedYogi": 0.1, "FedAdagrad": 0.01}  # eta * (1-b1) * d / sqrt(v)
    for name, expected in cases.items():
        merged, _ = create_strategy(name).aggregate_fit(1, zero, _res(one), [])
        assert merged is not None
        np.testing.assert_allclose(merged["w"], [expected], rtol=1e-5)
    avgm = create_strategy("FedAvgM", server_learning_rate=1.0, server_momentum=0.9)
    first, _ = avgm.aggregate_fit(1, zero, _res(one), [])
    assert first is not None and first["w"].tolist() == [1.0]  # v = -1, w = 0 + 1
    second, _ = avgm.aggregate_fit(2, first, _res([{"w": np.full(1, 2.0, np.float32)}]), [])
    assert second is not None
    np.testing.assert_allclose(second["w"], [2.9], rtol=1e-6)  # v = -0.9 - 1, w = 1 + 1.9


def test_server_state_survives_a_checkpoint_round_trip() -> None:
    a, b = create_strategy("FedAdam"), create_strategy("FedAdam")
    glob = {"w": np.zeros(2, np.float32)}
    step1, _ = a.aggregate_fit(1, glob, _res([{"w": np.ones(2, np.float32)}]), [])
    b.load_state_dict({k: v.copy() for k, v in a.state_dict().items()})
    assert step1 is not None
    nxt = _res([{"w": np.full(2, 3.0, np.float32)}])
    ours, theirs = a.aggregate_fit(2, step1, nxt, [])[0], b.aggregate_fit(2, step1, nxt, [])[0]
    np.testing.assert_array_equal(ours["w"], theirs["w"])


def test_fedprox_puts_mu_in_the_fit_config_and_samples_clients() -> None:
    strategy = create_strategy("FedProx", proximal_mu=0.5, fraction_fit=0.5, min_fit_clients=2,
                               fit_config={"epochs": 1})
    clients = [ClientInfo(f"c{i}", 10) for i in range(6)]
    chosen = strategy.configure_fit(3, {"w": np.zeros(1)}, clients, random.Random(0))
    assert len(chosen) == 3 and len({c for c, _ in chosen}) == 3
    assert chosen[0][1].config == {"epochs": 1, "server_round": 3, "proximal_mu": 0.5}
    assert len(strategy.configure_fit(1, {}, clients[:2], random.Random(0))) == 2  # min_fit_clients wins


def test_evaluate_is_sample_weighted_and_only_for_clients_that_can() -> None:
    from sedna.algorithms.aggregation import EvaluateRes

    strategy: Strategy = create_strategy("FedAvg")
    clients = [ClientInfo("a", 1, True), ClientInfo("b", 1, False)]
    assert [c for c, _ in strategy.configure_evaluate(1, {}, clients, random.Random(0))] == ["a"]
    loss, metrics = strategy.aggregate_evaluate(1, [EvaluateRes("a", 1, 1.0, {"accuracy": 1.0}),
                                                    EvaluateRes("b", 3, 2.0, {"accuracy": 0.6})], [])
    assert loss == pytest.approx(1.75) and metrics["accuracy"] == pytest.approx(0.7)


def test_bad_names_and_parameters_are_explained() -> None:
    with pytest.raises(RegistryError, match="Did you mean 'FedAvg'"):
        create_strategy("FedAvgg")
    with pytest.raises(ConfigError, match=r"FedTrimmedAvg.*beta"):
        create_strategy("FedTrimmedAvg", beta=0.7)
    with pytest.raises(ConfigError, match="bad parameters"):
        create_strategy("FedAvg", nonsense=1)
    with pytest.raises(ConfigError, match="fraction_fit"):
        create_strategy("FedAvg", fraction_fit=2)
