"""Reading JSON from the network with bounds: nesting depth, and tensors without Python objects.

``json.loads`` trusts its input twice over: a document nested 200 000 deep raises
``RecursionError`` (which callers rarely expect), and a tensor sent as a JSON list costs
a Python object per number (a 25 MB body became hundreds of MB). :func:`load` streams the
document through ijson's C parser instead and

* refuses nesting deeper than ``max_depth`` as soon as it is reached (:class:`JsonLimitError`),
* reads the arrays at ``tensor_paths`` (e.g. ``("inputs", ITEM, "data")``) straight into a
  typed buffer of 8 bytes per number (:class:`NumberArray`), refusing more than
  ``max_elements`` numbers; the rest of the document is built as usual.

Integers outside int64 and floats outside float64 are refused by the parser. Errors are
:class:`~sedna.common.errors.InvalidInputError` s whose message names the field (a dotted
path such as ``inputs[0].data``), never the parser's internals. The servers that use it:
the inference REST front end, the MQTT device gateway and the GM's local API.
"""

from __future__ import annotations

import io
from array import array
from collections.abc import Iterator, Sequence
from typing import Any

import numpy as np

from sedna.common.errors import InvalidInputError

ITEM = object()
"""A path element matching any index of a list (``("inputs", ITEM, "data")``)."""
MAX_DEPTH = 64
"""Default nesting limit: far beyond any request or manifest, far below the interpreter's stack."""
Path = tuple[Any, ...]


class JsonLimitError(InvalidInputError):
    """A JSON document is malformed or exceeds a bound; the message names the field.

    ``partial`` is what was read before the fault (e.g. to find a request's ``id``), or None;
    ``path`` is where in the document it happened (``("inputs", 0, "data")``).
    """

    partial: Any = None
    path: tuple[Any, ...] = ()


def field_name(path: Sequence[Any], root: str = "request body") -> str:
    """``inputs[0].data``: a path as error messages spell it (``root`` for the document itself)."""
    text = ""
    for part in [p for p in path if p is not None][:12]:
        text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else str(part))
    if len(path) > 12:
        text += f"... ({len(path)} levels)"
    return text or root


class NumberArray:
    """The numbers of one streamed JSON array, flattened, with the nesting it had.

    ``shape`` is the nested list's shape (``[[1, 2], [3, 4]]`` -> ``(2, 2)``), or None when
    the nesting is ragged; ``len()`` is the number of values.
    """

    __slots__ = ("_values", "bools", "field", "shape")

    def __init__(self, values: array[Any], shape: tuple[int, ...] | None, bools: int, field: str) -> None:
        self._values = values
        self.shape = shape
        self.bools = bools
        self.field = field

    def __len__(self) -> int:
        return len(self._values)

    def __repr__(self) -> str:
        return f"NumberArray({len(self)} values, shape={self.shape}, at {self.field})"

    def first(self) -> int | float | bool:
        """The first value (a bool only when every value was true/false); IndexError when empty."""
        value = self._values[0]
        return bool(value) if self.bools == len(self) else value

    def to_numpy(self, dtype: np.dtype[Any], datatype: str | None = None) -> np.ndarray:
        """The values as a flat array of ``dtype``; values that do not fit it are refused by name."""
        dtype = np.dtype(dtype)
        name = datatype or str(dtype)
        raw = np.frombuffer(self._values, dtype=np.float64 if self._values.typecode == "d" else np.int64)
        if dtype.kind == "b":
            not_bools = self._values.typecode == "d" and self.bools < len(raw)
            if raw.size and (raw.min() < 0 or raw.max() > 1 or not_bools):
                raise InvalidInputError(f"{self.field}: {name} values must be true/false (or 0/1)")
            return raw.astype(dtype)
        if dtype.kind in "iu":
            if self._values.typecode == "d" and raw.size and not np.array_equal(raw, np.floor(raw)):
                bad = raw[raw != np.floor(raw)][0].item()
                raise InvalidInputError(f"{self.field}: {bad!r} is not an integer ({name} wanted)")
            info = np.iinfo(dtype)
            if raw.size and (raw.min() < info.min or raw.max() > info.max):
                bad = raw.min() if raw.min() < info.min else raw.max()
                raise InvalidInputError(f"{self.field}: {bad.item()!r} is out of the range of {name} "
                                        f"[{info.min}, {info.max}]")
            return raw.astype(dtype)
        if raw.size and dtype.itemsize < 8:  # FP16 / FP32: a value beyond the type's range would become inf
            top = max(abs(float(raw.max())), abs(float(raw.min())))  # no temporary copies of the tensor
            if top > float(np.finfo(dtype).max):
                raise InvalidInputError(f"{self.field}: {top!r} overflows {name} "
                                        f"(largest {float(np.finfo(dtype).max)!r})")
        return raw.astype(dtype)


def load(data: bytes | memoryview, *, what: str = "request body", max_depth: int = MAX_DEPTH,
         tensor_paths: Sequence[Path] = (), max_elements: int = 1 << 24) -> Any:
    """The JSON document in ``data``, with the arrays at ``tensor_paths`` as :class:`NumberArray` s.

    ``what`` names the document in error messages (``"request body"``, ``"header"``);
    ``max_elements`` bounds the numbers of all tensors together.
    """
    import ijson

    source = io.BytesIO(data) if not isinstance(data, bytes) else data
    events = ijson.basic_parse(source, use_float=True)
    builder = _Builder(events, what, max_depth, tuple(tensor_paths), max_elements)
    try:
        return builder.run()
    except JsonLimitError as exc:
        exc.partial = builder.root[0] if builder.root else None
        exc.path = tuple(p for p in builder.path if p is not None)
        raise
    except ijson.JSONError as exc:
        reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        reason = reason.removeprefix("b'").removeprefix('b"')
        path = tuple(p for p in builder.path if p is not None)
        at = f" at {field_name(path, what)}" if path else ""
        error = JsonLimitError(f"{what} is not valid JSON{at} ({reason})")
        error.partial = builder.root[0] if builder.root else None
        error.path = path
        raise error from None


def loads(data: bytes | str, *, what: str = "request body", max_depth: int = MAX_DEPTH) -> Any:
    """:func:`load` without tensors: any JSON document, nesting bounded by ``max_depth``."""
    return load(data.encode("utf-8") if isinstance(data, str) else data, what=what, max_depth=max_depth)


class _Builder:
    """Builds a document from ijson ``basic_parse`` events, tracking the path for bounds and messages."""

    def __init__(self, events: Iterator[tuple[str, Any]], what: str, max_depth: int,
                 tensor_paths: tuple[Path, ...], max_elements: int) -> None:
        self.events = events
        self.what = what
        self.max_depth = max_depth
        self.tensor_paths = tensor_paths
        self.budget = max_elements
        self.max_elements = max_elements
        self.path: list[Any] = []
        self.root: list[Any] = []

    def _matches(self, path: list[Any]) -> bool:
        for pattern in self.tensor_paths:
            if len(pattern) == len(path) and all((p is ITEM and isinstance(q, int)) or p == q
                                                 for p, q in zip(pattern, path, strict=True)):
                return True
        return False

    def run(self) -> Any:
        stack: list[Any] = []
        keys: list[Any] = []  # the key (map) or next index (list) of each open container
        root = self.root
        for event, value in self.events:
            if event == "map_key":
                keys[-1] = value
                self.path[-1] = value
                continue
            if event in ("end_map", "end_array"):
                stack.pop()
                keys.pop()
                self.path.pop()
                continue
            if stack:
                parent = stack[-1]
                if isinstance(parent, list):
                    self.path[-1] = len(parent)
            if event in ("start_map", "start_array"):
                if len(stack) >= self.max_depth:
                    raise JsonLimitError(f"{field_name(self.path, self.what)}: nested deeper than "
                                         f"{self.max_depth} levels")
                if event == "start_array" and self.tensor_paths and self._matches(self.path):
                    value = self._numbers()
                else:
                    value = {} if event == "start_map" else []
                    self._add(stack, keys, root, value)
                    stack.append(value)
                    keys.append(None)
                    self.path.append(None)
                    continue
            self._add(stack, keys, root, value)
        if not root:
            raise JsonLimitError(f"{self.what}: empty (a JSON document was expected)")
        return root[0]

    @staticmethod
    def _add(stack: list[Any], keys: list[Any], root: list[Any], value: Any) -> None:
        if not stack:
            root.append(value)
        elif isinstance(stack[-1], dict):
            stack[-1][keys[-1]] = value
        else:
            stack[-1].append(value)

    def _numbers(self) -> NumberArray | list[Any]:
        """Consume one array (already opened) of numbers into a typed buffer (or of strings, as nested lists)."""
        where = field_name(self.path, self.what)
        values: array[Any] = array("q")
        append = values.append
        counts = [0]  # children seen so far in each open array, outermost first
        sizes: dict[int, int] = {}  # the child count of the first closed array at each level
        leaf_level: int | None = None
        ragged = False
        bools = 0
        base_depth = len(self.path)
        for event, value in self.events:
            if event == "number":
                counts[-1] += 1
                if leaf_level != len(counts):
                    ragged = ragged or leaf_level is not None
                    leaf_level = len(counts)
                try:
                    append(value)
                except TypeError:  # a float after integers: widen the buffer once
                    values = array("d", values)
                    append = values.append
                    append(value)
                if len(values) > self.budget:
                    raise JsonLimitError(f"{where}: more than {self.max_elements} values (the limit per request)")
            elif event == "boolean":
                counts[-1] += 1
                bools += 1
                if leaf_level != len(counts):
                    ragged = ragged or leaf_level is not None
                    leaf_level = len(counts)
                append(int(value))
            elif event == "start_array":
                counts[-1] += 1
                if leaf_level is not None and len(counts) >= leaf_level:
                    ragged = True
                counts.append(0)
                if base_depth + len(counts) > self.max_depth:
                    raise JsonLimitError(f"{where}: nested deeper than {self.max_depth} levels")
            elif event == "end_array":
                level = len(counts) - 1
                seen = counts.pop()
                if sizes.setdefault(level, seen) != seen:
                    ragged = True
                if not counts:
                    break
            elif event == "string" and not values and not sizes:  # a text (BYTES) tensor
                return self._strings(value, len(counts), where)
            else:
                kind = {"string": "a string", "null": "null", "start_map": "an object"}.get(event, event)
                raise JsonLimitError(f"{where}: holds {kind}; only numbers (or true/false) belong in a tensor")
        self.budget -= len(values)
        shape = None if ragged else tuple(sizes[level] for level in range(len(sizes)))
        return NumberArray(values, shape, bools, where)

    def _strings(self, first: str, levels: int, where: str) -> list[Any]:
        """Consume the rest of a tensor array whose first leaf is ``first`` as nested lists of strings."""
        stack: list[list[Any]] = [[]]
        for _ in range(levels - 1):
            stack[-1].append([])
            stack.append(stack[-1][-1])
        root = stack[0]
        stack[-1].append(first)
        count = 1
        for event, value in self.events:
            if event == "string":
                stack[-1].append(value)
                count += 1
                if count > self.budget:
                    raise JsonLimitError(f"{where}: more than {self.max_elements} values (the limit per request)")
            elif event == "start_array":
                if len(self.path) + len(stack) >= self.max_depth:
                    raise JsonLimitError(f"{where}: nested deeper than {self.max_depth} levels")
                stack[-1].append([])
                stack.append(stack[-1][-1])
            elif event == "end_array":
                stack.pop()
                if not stack:
                    break
            else:
                kind = {"number": "a number", "boolean": "true/false", "null": "null",
                        "start_map": "an object"}.get(event, event)
                raise JsonLimitError(f"{where}: holds {kind} beside strings; a BYTES element must be a string")
        self.budget -= count
        return root
