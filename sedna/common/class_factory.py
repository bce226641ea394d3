"""A registry of plug-in classes by type and alias.

Algorithms (hard-example mining, aggregation strategies, ...) register themselves
with :meth:`ClassFactory.register`; workers look them up by the name a resource
gives (``HEM_NAME``, ``aggregation``). Names are case-sensitive, as in Sedna, and
registering a second class under a taken name is an error (Sedna silently
overwrote it), unless the caller asks for it with ``replace=True``: user code that
deliberately swaps a built-in (say its own ``IBT``) says so, and a typo cannot
shadow a plug-in by accident. Functions register too (Sedna's post-process
callbacks are functions); :func:`resolve_callable` turns a callback given by name
into the callable to run.
"""

from __future__ import annotations

import difflib
import inspect
import threading
from collections.abc import Callable
from enum import Enum
from typing import Any, TypeVar, cast

from sedna.common.errors import RegistryError

T = TypeVar("T")


class ClassType(str, Enum):
    """Kinds of plug-in; values match Sedna's type names."""

    GENERAL = "general"
    HEM = "hard_example_mining"
    FL_AGG = "aggregation"
    MTL = "multi_task_learening"  # Sedna's spelling, kept so its registrations resolve
    OF = "optical_flow"
    ALGORITHM = "algorithm"
    DATASET = "data_process"
    CALLBACK = "post_process_callback"
    STP = "seen_task_processing"
    UTD = "unseen_task_detect"
    UTP = "unseen_task_processing"
    KM = "knowledge_management"


class ClassFactory:
    """Process-wide registry: ``{ClassType: {alias: class}}``."""

    _registry: dict[str, dict[str, type]] = {}
    _lock = threading.Lock()

    @classmethod
    def register(cls, type_name: ClassType | str = ClassType.GENERAL, alias: str | None = None, *,
                 replace: bool = False) -> Callable[[T], T]:
        """Decorator: register the class (or function) under ``alias`` (default: its ``__name__``).

        ``replace=True`` lets a deliberate re-registration take over a taken name.
        """

        def wrapper(klass: T) -> T:
            cls.register_cls(klass, type_name, alias, replace=replace)
            return klass

        return wrapper

    @classmethod
    def register_cls(cls, klass: Any, type_name: ClassType | str = ClassType.GENERAL,
                     alias: str | None = None, *, replace: bool = False) -> Any:
        """Register ``klass``; a name taken by another class raises :class:`RegistryError` unless ``replace``."""
        key = _type_key(type_name)
        name = alias or klass.__name__
        if key in _BUILTIN_MODULES:
            _load_builtins(key)  # built-ins first: a clash is caught, a replacement wins, whatever the import order
        with cls._lock:
            bucket = cls._registry.setdefault(key, {})
            existing = bucket.get(name)
            if existing is not None and existing is not klass and not replace:
                raise RegistryError(
                    f"{key} plug-in name {name!r} is already registered to "
                    f"{existing.__module__}.{existing.__qualname__}; choose another alias, "
                    f"or pass replace=True to take the name over deliberately"
                )
            bucket[name] = klass
        return klass

    @classmethod
    def register_from_package(cls, package: Any, type_name: ClassType | str = ClassType.GENERAL, *,
                              replace: bool = False) -> None:
        """Register every public class and function of ``package`` (a module) under its own name."""
        for name in dir(package):
            if name.startswith("_"):
                continue
            value = getattr(package, name)
            if inspect.isclass(value) or inspect.isfunction(value):
                cls.register_cls(value, type_name, replace=replace)

    @classmethod
    def unregister(cls, type_name: ClassType | str, alias: str) -> None:
        """Remove a registration (for tests and plug-in reloads); unknown names are ignored."""
        with cls._lock:
            cls._registry.get(_type_key(type_name), {}).pop(alias, None)

    @classmethod
    def is_exists(cls, type_name: ClassType | str, alias: str | None = None) -> bool:
        """Whether ``alias`` is registered for ``type_name`` (without alias: whether the type has any)."""
        _load_builtins(_type_key(type_name))
        bucket = cls._registry.get(_type_key(type_name), {})
        return bool(bucket) if alias is None else alias in bucket

    @classmethod
    def names(cls, type_name: ClassType | str) -> list[str]:
        """Sorted names registered for ``type_name``."""
        _load_builtins(_type_key(type_name))
        return sorted(cls._registry.get(_type_key(type_name), {}))

    @classmethod
    def get_cls(cls, type_name: ClassType | str, alias: str) -> Any:
        """Return the class registered as ``alias``; the error lists close matches."""
        key = _type_key(type_name)
        _load_builtins(key)
        bucket = cls._registry.get(key, {})
        try:
            return bucket[alias]
        except KeyError:
            close = difflib.get_close_matches(alias, bucket, n=1)
            hint = f" Did you mean {close[0]!r}?" if close else ""
            known = ", ".join(sorted(bucket)) or "none"
            raise RegistryError(f"no {key} plug-in named {alias!r} (registered: {known}).{hint}") from None

    @classmethod
    def create(cls, type_name: ClassType | str, alias: str, **kwargs: Any) -> Any:
        """Instantiate the class registered as ``alias`` with ``kwargs``."""
        return cls.get_cls(type_name, alias)(**kwargs)


def resolve_callable(value: Any, type_name: ClassType | str = ClassType.CALLBACK) -> Callable[..., Any] | None:
    """The callable ``value`` names: itself if callable, else the plug-in registered under that name.

    A registered class is instantiated with no arguments (its instance is the callable);
    a registered function is returned as is. None stays None.
    """
    if value is None:
        return None
    if callable(value):
        return value  # type: ignore[no-any-return]
    if not isinstance(value, str):
        raise TypeError(f"expected a callable or a registered {_type_key(type_name)} name, got {value!r}")
    found: Any = ClassFactory.get_cls(type_name, value)
    return cast("Callable[..., Any]", found() if inspect.isclass(found) else found)


def _type_key(type_name: ClassType | str) -> str:
    return type_name.value if isinstance(type_name, ClassType) else str(type_name)


# Built-in plug-ins live in these modules; they are imported on first lookup so that
# ``import sedna`` stays cheap and registration never happens at import of this module.
_BUILTIN_MODULES: dict[str, tuple[str, ...]] = {
    ClassType.HEM.value: ("sedna.algorithms.hard_example_mining",),
    ClassType.FL_AGG.value: ("sedna.algorithms.aggregation",),
    **{t.value: ("sedna.algorithms.lifelong",) for t in (ClassType.STP, ClassType.UTD, ClassType.UTP, ClassType.KM)},
}


def _load_builtins(key: str) -> None:
    import importlib

    for module in _BUILTIN_MODULES.get(key, ()):
        try:
            importlib.import_module(module)
        except ModuleNotFoundError as exc:  # a package not written yet must not break lookups
            if exc.name != module:
                raise
