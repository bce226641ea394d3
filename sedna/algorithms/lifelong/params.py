"""Parameter coercion for plug-ins: values may arrive as JSON strings or env strings.

Errors are ``ValueError`` s that name the parameter, so a bad ``{"method", "param"}`` in a job
says which field to fix.
"""

from __future__ import annotations

import json
from typing import Any


def as_int(value: Any, name: str) -> int:
    try:
        return int(value)
    except (TypeError, ValueError):
        raise ValueError(f"param {name!r} must be an integer, got {value!r}") from None


def as_float(value: Any, name: str) -> float:
    try:
        return float(value)
    except (TypeError, ValueError):
        raise ValueError(f"param {name!r} must be a number, got {value!r}") from None


def as_str_list(value: Any, name: str) -> tuple[str, ...]:
    """A list of names from a list, a JSON list string, or a comma-separated string."""
    if value is None or value == "":
        return ()
    if isinstance(value, str):
        text = value.strip()
        if text.startswith("["):
            try:
                value = json.loads(text)
            except json.JSONDecodeError as exc:
                raise ValueError(f"param {name!r} is not a valid JSON list ({exc.msg}): {value!r}") from None
        else:
            return tuple(part.strip() for part in text.split(",") if part.strip())
    if not isinstance(value, (list, tuple)) or not all(isinstance(v, (str, int)) for v in value):
        raise ValueError(f"param {name!r} must be a list of names, got {value!r}")
    return tuple(str(v) for v in value)


def as_choice(value: Any, name: str, choices: tuple[str, ...]) -> str:
    text = str(value)
    if text not in choices:
        raise ValueError(f"param {name!r} must be one of {', '.join(choices)}, got {value!r}")
    return text
