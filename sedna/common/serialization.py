"""Objects to files and back without pickle: JSON, ``.npy`` and ``.npz``.

:meth:`~sedna.common.file_ops.FileOps.dump` and ``load`` use this module. The format
follows the object (a numpy array: ``.npy``; a dict of arrays: ``.npz``; JSON data:
``.json``) or, when the caller names one, the destination's suffix. Loading looks at the
file's first bytes, not its name. Pickle is the last resort, only when the caller
passes ``allow_pickle=True`` (``FileOps`` never passes it for a downloaded file).
"""

from __future__ import annotations

import json
import pickle
from pathlib import Path
from typing import Any

import numpy as np

_NPY_MAGIC = b"\x93NUMPY"
_ZIP_MAGIC = b"PK\x03\x04"
_PICKLE_SUFFIXES = (".pkl", ".pickle", ".joblib")


def suffix_for(obj: Any, dst: str | None, allow_pickle: bool) -> str:
    """The file suffix ``obj`` is written with (raises TypeError when only pickle could hold it)."""
    if dst and Path(str(dst)).suffix.lower() in _PICKLE_SUFFIXES and allow_pickle:
        return ".pkl"
    if isinstance(obj, np.ndarray) and obj.dtype != object:
        return ".npy"
    if isinstance(obj, dict) and obj and all(isinstance(v, np.ndarray) and v.dtype != object for v in obj.values()):
        return ".npz"
    try:
        json.dumps(obj)
    except (TypeError, ValueError):
        if allow_pickle:
            return ".pkl"
        raise TypeError(
            f"cannot store a {type(obj).__name__} without pickle: give JSON data, a numpy array or a dict of "
            f"arrays, or pass allow_pickle=True for a file that stays local"
        ) from None
    return ".json"


def dump(obj: Any, path: str | Path, *, allow_pickle: bool = False, force_pickle: bool = False) -> str:
    """Write ``obj`` to ``path`` in the format its suffix names (see :func:`suffix_for`)."""
    target = Path(path)
    suffix = ".pkl" if force_pickle else suffix_for(obj, str(target), allow_pickle)
    with target.open("wb") as handle:
        if suffix == ".npy":
            np.save(handle, obj, allow_pickle=False)
        elif suffix == ".npz":
            np.savez(handle, **obj)
        elif suffix == ".json":
            handle.write(json.dumps(obj).encode("utf-8"))
        else:
            pickle.dump(obj, handle)
    return str(target)


def load(path: str | Path, *, allow_pickle: bool = False, source: str = "", force_pickle: bool = False) -> Any:
    """Read a file written by :func:`dump`; ``source`` names it in errors."""
    name = source or str(path)
    with Path(path).open("rb") as handle:
        head = handle.read(8)
        handle.seek(0)
        if force_pickle or (allow_pickle and head[:1] == b"\x80"):
            return pickle.load(handle)  # a local file the caller named, with allow_pickle=True
        if head.startswith(_NPY_MAGIC):
            return np.load(handle, allow_pickle=False)
        if head.startswith(_ZIP_MAGIC):
            with np.load(handle, allow_pickle=False) as archive:
                return {key: archive[key] for key in archive.files}
        if head[:1] == b"\x80":
            raise ValueError(f"{name!r} is a pickle; it is not loaded (pickle runs code): pass allow_pickle=True "
                             f"only for a local file you trust")
        try:
            return json.loads(handle.read().decode("utf-8"))
        except (UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise ValueError(f"{name!r} is not JSON, .npy or .npz: {exc}") from None
