"""Sedna's data sources: ``TxtDataParse`` and ``CSVDataParse`` with Sedna's semantics.

Records come from the one index parser (:mod:`sedna.datasources.index`), so a program
sees exactly the samples the LC counted and split. On top of that, Sedna's rules:

- ``func`` (a callable, or the name of a registered ``ClassType.CALLBACK``) maps each
  TXT line; a returned ``[x, y]`` gives the sample and its label (every Sedna example
  returns such a pair), a one-element list gives only x.
- Without ``func`` a TXT line's first token is x and its second the label; a training
  line without a label gets 0. Tokens are kept as written (Sedna's examples join them
  with ``dirname(ORIGINAL_DATASET_URL)`` themselves; an LC split file lives elsewhere).
- ``use_raw=True`` keeps what ``func`` returned (or the token list) whole as x, no y.
- A missing or ``None`` index file is skipped (with a warning), as Sedna skips it.
- ``CSVDataParse`` gives pandas objects: ``x`` a DataFrame, ``y`` the ``label`` column
  as a Series; ``func`` is called with each file's DataFrame.

``save()`` writes ``x``/``y`` to an ``.npz`` file (no pickle; :meth:`BaseDataSource.load` reads it back).
"""

from __future__ import annotations

import io
import json
import os
import tempfile
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from sedna.common.class_factory import ClassType, resolve_callable
from sedna.common.errors import DataSourceError
from sedna.common.log import get_logger
from sedna.datasources.index import read_index

LOG = get_logger(__name__)


class BaseDataSource:
    """A parsed dataset: inputs ``x``, labels ``y``, and ``meta_attr`` (lifelong learning).

    Parameters
    ----------
    data_type:
        ``train``, ``eval`` or ``test``; test data carries no labels.
    func:
        A callable, or the name of a registered ``ClassType.CALLBACK`` plug-in, that
        maps each raw sample (see the subclasses).
    """

    def __init__(self, data_type: str = "train", func: Callable[..., Any] | str | None = None) -> None:
        self.data_type = data_type
        self.process_func: Callable[..., Any] | None = resolve_callable(func, ClassType.CALLBACK)
        self.x: Any = None
        self.y: Any = None
        self.meta_attr: Any = None

    @property
    def func(self) -> Callable[..., Any] | None:
        """The per-sample function (Sedna calls it ``process_func``)."""
        return self.process_func

    @property
    def is_test_data(self) -> bool:
        return self.data_type == "test"

    def num_examples(self) -> int:
        return 0 if self.x is None else len(self.x)

    def __len__(self) -> int:
        return self.num_examples()

    def parse(self, *args: Any, **kwargs: Any) -> Any:
        raise NotImplementedError

    def save(self, output: str | Path = "") -> str:
        """Write ``x``, ``y`` and ``meta_attr`` to ``output`` (``.npz``; a temp file when empty); return the path."""
        path = Path(output) if output else Path(tempfile.mkstemp(suffix=".npz", prefix="sedna-data-")[1])
        path.parent.mkdir(parents=True, exist_ok=True)
        members: dict[str, Any] = {"data_type": np.array(self.data_type),
                                   "meta_attr": np.array(json.dumps(self.meta_attr))}
        for name in ("x", "y"):
            members.update(_pack(name, getattr(self, name)))
        with path.open("wb") as handle:  # an open handle: numpy adds no ".npz" to the name
            np.savez(handle, **members)
        return str(path)

    @classmethod
    def load(cls, path: str | Path) -> BaseDataSource:
        """Read a file written by :meth:`save` (never unpickles)."""
        try:
            with np.load(path, allow_pickle=False) as data:
                members = {name: data[name] for name in data.files}
        except (OSError, ValueError) as exc:
            raise DataSourceError(f"{str(path)!r} is not a data source saved by save(): {exc}") from None
        source = cls(str(members.get("data_type", np.array("train"))))
        source.x, source.y = _unpack("x", members), _unpack("y", members)
        source.meta_attr = json.loads(str(members["meta_attr"])) if "meta_attr" in members else None
        return source


class TxtDataParse(BaseDataSource):
    """A TXT index: one sample per line (see the module docstring for the rules)."""

    def parse(self, *files: str | Path | None, use_raw: bool = False, **_: Any) -> TxtDataParse:
        xs: list[Any] = []
        ys: list[Any] = []
        for file in _existing(files):
            for record in read_index(file, "txt").records:
                line = record.text.strip()
                item = self.process_func(line) if self.process_func is not None else list(record.fields)
                if use_raw:
                    xs.append(item)
                    continue
                if isinstance(item, (list, tuple)):
                    if not item:
                        continue
                    x, y = item[0], (item[1] if len(item) > 1 else 0)
                else:
                    x, y = item, 0
                xs.append(x)
                if not self.is_test_data:
                    ys.append(y)
        self.x = _array(xs)
        self.y = _array(ys)
        return self


class CSVDataParse(BaseDataSource):
    """CSV files (or dict rows) as pandas: ``x`` a DataFrame, ``y`` the ``label`` column as a Series."""

    @staticmethod
    def parse_json(lines: Mapping[str, Any] | Sequence[Mapping[str, Any]], **kwargs: Any) -> Any:
        """One row (a dict) or several (a list of dicts) as a DataFrame."""
        import pandas as pd

        rows = [lines] if isinstance(lines, Mapping) else list(lines)
        return pd.DataFrame.from_records(rows, **kwargs)

    def parse(self, *files: Any, label: str | None = None, usecols: str | Sequence[str] | None = None,
              **kwargs: Any) -> CSVDataParse:
        import pandas as pd

        if isinstance(usecols, str):
            usecols = [c.strip() for c in usecols.split(",") if c.strip()]
        if usecols:
            kwargs["usecols"] = [*usecols, label] if label and label not in usecols else list(usecols)
        xs: list[Any] = []
        ys: list[Any] = []
        for file in files:
            if isinstance(file, (Mapping, list)):
                frame, name = self.parse_json(file), "the given rows"
            else:
                found = list(_existing([file]))
                if not found:
                    continue
                frame, name = _read_csv(found[0], kwargs), repr(str(found[0]))
            if self.process_func is not None:
                frame = self.process_func(frame)
            if label:
                if label in frame.columns:
                    ys.append(frame[label])
                    frame = frame.drop(columns=[label])
                elif not self.is_test_data:
                    raise DataSourceError(f"label column {label!r} is not in {name} (columns: {list(frame.columns)})")
            xs.append(frame)
        if xs:
            self.x = pd.concat(xs)
            self.y = pd.concat(ys) if ys else None
            self.meta_attr = list(self.x.columns)
        return self


def _read_csv(file: str | Path, kwargs: dict[str, Any]) -> Any:
    import pandas as pd

    index = read_index(file, "csv")
    if index.header is None:
        raise DataSourceError(f"CSV file {str(file)!r} has no header row")
    text = "\n".join([index.header.text, *(record.text for record in index.records)]) + "\n"
    try:
        return pd.read_csv(io.StringIO(text), **kwargs)
    except ValueError as exc:  # bad usecols, dtype ... : name the file
        raise DataSourceError(f"cannot read CSV file {str(file)!r}: {exc}") from None


def _existing(files: Sequence[str | Path | None]) -> list[str | Path]:
    found = []
    for file in files:
        if not file:
            continue
        if not os.path.exists(file):
            LOG.warning("dataset index %r does not exist; skipped", str(file))
            continue
        found.append(file)
    return found


def _array(items: list[Any]) -> np.ndarray:
    """``np.array(items)``, or a 1-D object array when the items have different shapes."""
    try:
        return np.array(items)
    except ValueError:
        out = np.empty(len(items), dtype=object)
        for i, item in enumerate(items):
            out[i] = item
        return out


def _pack(name: str, value: Any) -> dict[str, np.ndarray]:
    if value is None:
        return {}
    if hasattr(value, "to_json"):  # a pandas DataFrame or Series
        kind = "frame" if hasattr(value, "columns") else "series"
        return {f"{name}__{kind}": np.array(value.to_json(orient="split"))}
    array = np.asarray(value)
    if array.dtype == object:
        try:
            array = array.astype(str) if all(isinstance(v, str) for v in array.ravel()) else array.astype(float)
        except (TypeError, ValueError):
            raise DataSourceError(f"cannot save {name}: it holds Python objects, which would need pickle") from None
    return {name: array}


def _unpack(name: str, members: dict[str, np.ndarray]) -> Any:
    if name in members:
        return members[name]
    for kind in ("frame", "series"):
        key = f"{name}__{kind}"
        if key in members:
            import pandas as pd

            text = io.StringIO(str(members[key]))
            return pd.read_json(text, orient="split", typ=kind)
    return None
