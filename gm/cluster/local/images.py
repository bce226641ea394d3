"""The local runtime's image catalog: what an image would run, for containers that name no ``command``.

The local runtime runs processes, not images, so a container needs a ``command``. Sedna's
manifests (and most Kubernetes ones) give none: they rely on the image's ENTRYPOINT/CMD. The
catalog supplies them per image name: the project's own images are built in
(:data:`BUILTIN`), others are registered in a YAML file (``<state-dir>/images.yaml`` by
default, or the GM's ``--image-catalog``)::

    images:
      kubeedge/sedna-example-joint-inference-helmet-detection-little:v0.3.0:
        command: [python, little_model.py]       # the image's ENTRYPOINT (required)
        args: []                                 # its CMD (optional)
        workingDir: /src/helmet/little_model     # its WORKDIR (optional)
        env: {PYTHONPATH: /src/lib}              # its ENV (optional; the container's env wins)

A key with a tag or digest matches that image only; a key without one matches every tag of the
repository. Kubernetes' rules combine catalog and container: a container's ``command`` replaces
the entry's, and its ``args`` replace the entry's ``args``. The file is re-read when it changes,
so registering an image lets a waiting Pod start at its next retry; a malformed file is refused
with its path and the offending key, and the previous catalog is kept.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from gm.cluster.interface import Invalid
from sedna.common.log import get_logger

_LOG = get_logger(__name__)
CATALOG_FILE = "images.yaml"
"""The catalog's file name in the GM's state directory."""
UNKNOWN_IMAGE_REASON = "ErrImagePull"
"""The container ``waiting`` reason of an image the catalog does not know (a kubelet's for an image it cannot get)."""


@dataclass(frozen=True)
class ImageEntry:
    """How to run one image: its ENTRYPOINT (``command``), CMD (``args``), WORKDIR and ENV."""

    command: tuple[str, ...]
    args: tuple[str, ...] = ()
    working_dir: str | None = None
    env: Mapping[str, str] = field(default_factory=dict)


def _module(name: str) -> ImageEntry:
    return ImageEntry(("python", "-m", name))


BUILTIN: Mapping[str, ImageEntry] = {
    "sedna-py": ImageEntry(("python", "-m", "gm")),  # the Dockerfile's CMD
    "sedna-py/joint-inference-cloud": _module("workers.joint_inference.cloud"),
    "sedna-py/joint-inference-edge": _module("workers.joint_inference.edge"),
    "sedna-py/federated-aggregator": _module("workers.federated.aggregator"),
    "sedna-py/federated-trainer": _module("workers.federated.trainer"),
    "sedna-py/incremental-train": _module("workers.incremental.train"),
    "sedna-py/incremental-eval": _module("workers.incremental.eval"),
    "sedna-py/incremental-infer": _module("workers.incremental.infer"),
}
"""The project's own images (every tag): the ready-made workers, and the control plane's image."""


class UnknownImage(Invalid):
    """A container names no ``command`` and an image the catalog does not know."""


def repository(image: str) -> str:
    """``image`` without its tag or digest (``host:5000/team/app:v1`` -> ``host:5000/team/app``)."""
    name = image.split("@", 1)[0]
    head, _, last = name.rpartition("/")
    if ":" in last:
        last = last.split(":", 1)[0]
    return f"{head}/{last}" if head else last


def _strings(value: Any, where: str) -> tuple[str, ...]:
    if not isinstance(value, list) or not all(isinstance(v, (str, int, float)) for v in value):
        raise ValueError(f"{where}: must be a list of strings, got {value!r}")
    return tuple(str(v) for v in value)


def parse_entry(image: str, raw: Any, where: str) -> ImageEntry:
    """One catalog entry; ``ValueError`` names ``where`` (the file and the image key)."""
    if not isinstance(raw, Mapping):
        raise ValueError(f"{where}: must be a mapping with 'command' (and optionally args, workingDir, env)")
    unknown = sorted(set(raw) - {"command", "args", "workingDir", "env"})
    if unknown:
        raise ValueError(f"{where}: unknown field(s) {', '.join(map(repr, unknown))} "
                         "(known: command, args, workingDir, env)")
    command = _strings(raw.get("command"), f"{where}.command")
    if not command:
        raise ValueError(f"{where}.command: must name the program the image runs (its ENTRYPOINT)")
    working_dir = raw.get("workingDir")
    if working_dir is not None and not isinstance(working_dir, str):
        raise ValueError(f"{where}.workingDir: must be a string, got {working_dir!r}")
    env = raw.get("env") or {}
    if not isinstance(env, Mapping) or not all(isinstance(k, str) for k in env):
        raise ValueError(f"{where}.env: must be a mapping of names to values, got {env!r}")
    return ImageEntry(command, _strings(raw.get("args") or [], f"{where}.args"), working_dir or None,
                      {k: str(v) for k, v in env.items()})


def parse_catalog(text: str, path: str) -> dict[str, ImageEntry]:
    """The entries of a catalog file's text; ``ValueError`` names the file and the key at fault."""
    import yaml

    try:
        doc = yaml.safe_load(text) if text.strip() else {}
    except yaml.YAMLError as exc:
        raise ValueError(f"{path}: not valid YAML: {exc}".replace("\n", " ")) from None
    if doc is None:
        doc = {}
    if not isinstance(doc, Mapping) or not isinstance(doc.get("images", {}) or {}, Mapping):
        raise ValueError(f"{path}: expected a mapping 'images: {{<image>: {{command: [...]}}}}'")
    return {str(image): parse_entry(str(image), raw, f"{path}: images[{image!r}]")
            for image, raw in (doc.get("images") or {}).items()}


class ImageCatalog:
    """Image name -> :class:`ImageEntry`: the built-in entries plus the file at ``path`` (if it exists)."""

    def __init__(self, path: str | Path | None = None, builtin: Mapping[str, ImageEntry] = BUILTIN) -> None:
        self.path = Path(path) if path is not None else None
        self._builtin = dict(builtin)
        self._entries: dict[str, ImageEntry] = {}
        self._stamp: tuple[float, int] | None = None
        self.reload(strict=True)

    def reload(self, strict: bool = False) -> None:
        """Re-read the file if it changed; a bad file raises when ``strict``, else is logged and skipped."""
        if self.path is None:
            return
        try:
            stat = os.stat(self.path)
        except FileNotFoundError:
            self._entries, self._stamp = {}, None
            return
        stamp = (stat.st_mtime, stat.st_size)
        if stamp == self._stamp:
            return
        try:
            self._entries = parse_catalog(self.path.read_text(), str(self.path))
        except (OSError, ValueError) as exc:
            if strict:
                raise ValueError(str(exc)) from None
            _LOG.error("image catalog not reloaded (the previous one stays in use): %s", exc)
        self._stamp = stamp

    def lookup(self, image: str) -> ImageEntry | None:
        """The entry for ``image``: the exact name, else its repository (file before built-in)."""
        self.reload()
        for table in (self._entries, self._builtin):
            for key in (image, repository(image)):
                if key in table:
                    return table[key]
        return None

    def describe(self) -> str:
        """Where users register images (for error messages)."""
        return str(self.path) if self.path is not None else "the GM's --image-catalog file"


def resolve(container: Mapping[str, Any], index: int, catalog: ImageCatalog | None) -> ImageEntry | None:
    """The catalog entry a container without ``command`` runs; raises :class:`UnknownImage` naming the image."""
    if container.get("command"):
        return None
    image = str(container.get("image") or "")
    entry = catalog.lookup(image) if catalog is not None and image else None
    if entry is not None:
        return entry
    field_name = f"spec.containers[{index}].image"
    if not image:
        msg = "the container has neither a command nor an image: give a command (the local runtime runs processes)"
    else:
        where = catalog.describe() if catalog is not None else "an image catalog"
        msg = (f"image {image!r} is not in the local image catalog and the container has no command: "
               f"register it in {where} (images: {{{image!r}: {{command: [...]}}}}) or give the container a command")
    raise UnknownImage(f"{field_name}: {msg}", [(field_name, msg)])


__all__ = ["BUILTIN", "CATALOG_FILE", "UNKNOWN_IMAGE_REASON", "ImageCatalog", "ImageEntry", "UnknownImage",
           "parse_catalog", "repository", "resolve"]
