"""TxtDataParse and CSVDataParse follow Sedna's semantics (issue 15)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from sedna.common.class_factory import ClassFactory, ClassType
from sedna.common.errors import DataSourceError, RegistryError
from sedna.datasources import BaseDataSource, CSVDataParse, TxtDataParse


def _features(line: str) -> list[np.ndarray]:
    """Sedna's example style: ``path,label`` -> [features, one-hot label]."""
    path, label = line.split(",")
    features = np.full((2, 3), float(len(path)))
    return [features, np.array([0, 1] if label == "1" else [1, 0])]


def test_a_func_returning_x_and_y_gives_both(tmp_path: Path) -> None:
    index = tmp_path / "train.txt"
    index.write_text("a.png,1\nbb.png,0\n")
    data = TxtDataParse(data_type="train", func=_features)
    data.parse(str(index))
    assert data.x.shape == (2, 2, 3) and data.x[1, 0, 0] == 6.0
    assert data.y.tolist() == [[0, 1], [1, 0]] and len(data) == 2


def test_missing_and_none_files_are_skipped(tmp_path: Path) -> None:
    index = tmp_path / "train.txt"
    index.write_text("a.png 1\n")
    data = TxtDataParse("train").parse(None, str(tmp_path / "absent.txt"), index)
    assert data.x.tolist() == ["a.png"] and data.y.tolist() == ["1"]
    assert len(TxtDataParse("test").parse(None)) == 0


def test_unlabelled_training_lines_get_label_zero_and_tokens_stay_as_written(tmp_path: Path) -> None:
    index = tmp_path / "train.txt"
    index.write_text("images/a.png 3\nimages/b.png\n")
    data = TxtDataParse("train").parse(index)
    assert data.x.tolist() == ["images/a.png", "images/b.png"]
    assert data.y.tolist() == ["3", "0"]


def test_test_data_has_no_labels_and_use_raw_keeps_lines_whole(tmp_path: Path) -> None:
    index = tmp_path / "test.txt"
    index.write_text("a.png 1\nb.png 0\n")
    test = TxtDataParse("test").parse(index)
    assert test.x.tolist() == ["a.png", "b.png"] and test.y.size == 0
    raw = TxtDataParse("train", func=lambda line: f"/data/{line}").parse(index, use_raw=True)
    assert raw.x.tolist() == ["/data/a.png 1", "/data/b.png 0"]


def test_ragged_samples_become_an_object_array(tmp_path: Path) -> None:
    index = tmp_path / "train.txt"
    index.write_text("1 2 3\n4\n")
    data = TxtDataParse("test", func=lambda line: [[int(v) for v in line.split()]]).parse(index)
    assert data.x.dtype == object and data.x[0] == [1, 2, 3] and data.x[1] == [4]


def test_a_registered_func_name_is_resolved(tmp_path: Path) -> None:
    @ClassFactory.register(ClassType.CALLBACK, alias="test-upper-pair")
    def upper_pair(line: str) -> list[str]:
        return [line.upper(), "7"]

    @ClassFactory.register(ClassType.CALLBACK, alias="test-reverse-pair")
    class ReversePair:
        def __call__(self, line: str) -> list[str]:
            return [line[::-1], "8"]

    try:
        index = tmp_path / "train.txt"
        index.write_text("ab\n")
        assert TxtDataParse("train", func="test-upper-pair").parse(index).x.tolist() == ["AB"]
        reversed_ = TxtDataParse("train", func="test-reverse-pair").parse(index)
        assert (reversed_.x.tolist(), reversed_.y.tolist()) == (["ba"], ["8"])
        with pytest.raises(RegistryError, match="no post_process_callback plug-in named 'test-nope'"):
            TxtDataParse("train", func="test-nope")
    finally:
        ClassFactory.unregister(ClassType.CALLBACK, "test-upper-pair")
        ClassFactory.unregister(ClassType.CALLBACK, "test-reverse-pair")


def test_csv_gives_pandas_and_calls_func_with_each_frame(tmp_path: Path) -> None:
    index = tmp_path / "train.csv"
    index.write_text("temp,humidity,label\n20.5,30,1\n# comment\n22.0,35,0\n")
    seen = []

    def add_feature(frame: pd.DataFrame) -> pd.DataFrame:
        seen.append(len(frame))
        return frame.assign(heat=frame["temp"] * 2)

    data = CSVDataParse(data_type="train", func=add_feature)
    data.parse(str(index), str(tmp_path / "absent.csv"), label="label")
    assert seen == [2]
    assert isinstance(data.x, pd.DataFrame) and isinstance(data.y, pd.Series)
    assert list(data.x.columns) == ["temp", "humidity", "heat"] and data.x["heat"].tolist() == [41.0, 44.0]
    assert data.y.tolist() == [1, 0] and data.meta_attr == ["temp", "humidity", "heat"]


def test_csv_rows_usecols_and_a_missing_label(tmp_path: Path) -> None:
    index = tmp_path / "train.csv"
    index.write_text("a,b,c,label\n1,2,3,x\n")
    picked = CSVDataParse("train").parse(index, label="label", usecols="a,c")
    assert list(picked.x.columns) == ["a", "c"] and picked.y.tolist() == ["x"]
    row = CSVDataParse("test").parse({"a": 5, "b": 6}, label="label")
    assert row.x.to_dict("records") == [{"a": 5, "b": 6}] and row.y is None
    with pytest.raises(DataSourceError, match=r"label column 'klass' is not in '.*train\.csv'"):
        CSVDataParse("train").parse(index, label="klass")


def test_save_and_load_round_trip_without_pickle(tmp_path: Path) -> None:
    index = tmp_path / "train.txt"
    index.write_text("a.png,1\nbb.png,0\n")
    data = TxtDataParse("train", func=_features).parse(index)
    path = data.save(tmp_path / "saved.npz")
    again = BaseDataSource.load(path)
    assert np.array_equal(again.x, data.x) and np.array_equal(again.y, data.y)
    assert again.data_type == "train"

    frame = CSVDataParse("eval").parse({"t": 1.5, "label": 2}, label="label")
    again = BaseDataSource.load(frame.save(tmp_path / "frame.npz"))
    assert again.x.to_dict("records") == [{"t": 1.5}] and again.y.tolist() == [2]
    with np.load(path, allow_pickle=False) as members:  # plain arrays: readable without pickle
        assert members["x"].dtype == np.float64


def test_saving_python_objects_is_refused_rather_than_pickled(tmp_path: Path) -> None:
    data = BaseDataSource()
    data.x = np.array([{"a": 1}], dtype=object)
    with pytest.raises(DataSourceError, match="would need pickle"):
        data.save(tmp_path / "x.npz")
