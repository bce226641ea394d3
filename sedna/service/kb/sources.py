"""Where an index comes from, and a local copy of a knowledge base.

An **index location** (``MODEL_URLS``, ``CLOUD_KB_INDEX``) is either

- a KB server URL: ``http://host:port/knowledgebase/index`` (the latest *published* version),
  ``.../index/7`` (version 7), or just ``http://host:port``; or
- a local KB directory (or its ``index.json``): ``<dir>/index.json`` plus ``<dir>/blobs/<sha256>``.

:func:`open_source` returns an :class:`IndexSource` for either. A :class:`LocalKB` is such a
directory; :meth:`LocalKB.sync` makes it a copy of a source's current version: it fetches the
index (conditionally, by ETag), validates it, fetches the blobs it lacks (each checked against
its hash, size and format) and only then replaces ``index.json`` -- atomically, so a reader
sees the old version or the new one, never a mix. When the source is unreachable the copy
keeps what it has and the caller serves from it (the edge's autonomy while the cloud is away).
"""

from __future__ import annotations

import json
import os
import re
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from sedna.common.log import get_logger
from sedna.service.kb.blobs import BlobStore, check_format, sha256_file
from sedna.service.kb.errors import KBError, KBNotFoundError, KBUnavailableError, KBValidationError
from sedna.service.kb.schema import blob_refs, validate_index

LOG = get_logger(__name__)
INDEX_FILE = "index.json"


class IndexSource(Protocol):
    """Something that holds index versions and their blobs."""

    location: str

    def fetch_index(self, etag: str | None = None) -> tuple[dict[str, Any] | None, str]:
        """``(index, etag)``, or ``(None, etag)`` when unchanged since ``etag``."""
        ...

    def fetch_blob(self, ref: dict[str, Any], dest: Path) -> Path:
        """Copy blob ``ref`` to ``dest`` after checking it."""
        ...

    def close(self) -> None:
        """Release connections."""
        ...


class HttpSource:
    """A KB server; ``version`` None follows the latest published version."""

    def __init__(self, location: str, token: str = "", timeout: float = 10.0) -> None:
        from sedna.service.kb.client import KBClient

        self.location = location
        match = re.match(r"^(https?://[^/]+)(?:/knowledgebase(?:/index(?:/(\d+))?)?)?/?$", location)
        if not match:
            raise KBValidationError("location", f"{location!r} is not a KB URL (http://host:port/knowledgebase/"
                                                f"index[/N])")
        self.version = int(match.group(2)) if match.group(2) else None
        self.client = KBClient(match.group(1), token, timeout)

    def fetch_index(self, etag: str | None = None) -> tuple[dict[str, Any] | None, str]:
        return self.client.index(self.version, etag)

    def fetch_blob(self, ref: dict[str, Any], dest: Path) -> Path:
        return self.client.download_blob(ref, dest)

    def close(self) -> None:
        self.client.close()


class DirSource:
    """A local KB directory (``index.json`` + ``blobs/``)."""

    def __init__(self, location: str | Path) -> None:
        path = Path(location)
        self.root = path.parent if path.name == INDEX_FILE or path.suffix == ".json" else path
        self.index_path = path if path.suffix == ".json" else path / INDEX_FILE
        self.location = str(self.index_path)

    def fetch_index(self, etag: str | None = None) -> tuple[dict[str, Any] | None, str]:
        try:
            stat = self.index_path.stat()
        except FileNotFoundError:
            raise KBNotFoundError(f"no KB index at {self.index_path}") from None
        tag = f"{stat.st_ino}-{stat.st_size}-{stat.st_mtime_ns}"
        if tag == etag:
            return None, tag
        try:
            doc = json.loads(self.index_path.read_text(encoding="utf-8"))
        except json.JSONDecodeError as exc:
            raise KBValidationError("index", f"{self.index_path} is not valid JSON ({exc.msg} at char {exc.pos})") \
                from None
        return doc, tag

    def fetch_blob(self, ref: dict[str, Any], dest: Path) -> Path:
        source = self.root / "blobs" / ref["sha256"]
        if not source.exists():
            raise KBNotFoundError(f"blob {ref['sha256']} named by {self.index_path} is missing from {source.parent}")
        if source.stat().st_size != ref["size"] or sha256_file(source) != ref["sha256"]:
            raise KBValidationError("sha256", f"{source} does not match its reference (size {ref['size']}, "
                                              f"sha256 {ref['sha256']})")
        check_format(source, ref["format"])
        dest.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=dest.parent, prefix=".copy-")
        os.close(fd)
        shutil.copyfile(source, tmp)
        os.replace(tmp, dest)
        return dest

    def close(self) -> None:
        pass


def open_source(location: str, token: str = "", timeout: float = 10.0) -> IndexSource:
    """The :class:`IndexSource` of an index location (URL or local path)."""
    if not location:
        raise KBValidationError("location", "the index location is empty (set MODEL_URLS or CLOUD_KB_INDEX)")
    if location.startswith(("http://", "https://")):
        return HttpSource(location, token, timeout)
    if location.startswith("file://"):
        location = location[len("file://"):]
    return DirSource(location)


@dataclass(frozen=True)
class SyncResult:
    """What :meth:`LocalKB.sync` did."""

    changed: bool
    version: int | None
    error: str = ""


class LocalKB:
    """A KB directory: ``index.json`` (one version) and the blobs it names."""

    def __init__(self, root: str | Path) -> None:
        self.root = Path(root)
        self.blobs = BlobStore(self.root)
        self.index_path = self.root / INDEX_FILE
        self._etag: str | None = None
        self._location: str | None = None

    def read(self) -> dict[str, Any] | None:
        """The current index (validated), or None when the copy is empty."""
        if not self.index_path.exists():
            return None
        return validate_index(json.loads(self.index_path.read_text(encoding="utf-8")))

    def blob_path(self, ref: dict[str, Any]) -> Path:
        return self.blobs.verify(ref)

    def write_index(self, doc: dict[str, Any]) -> Path:
        """Replace ``index.json`` atomically with ``doc`` (validated; its blobs must be present)."""
        validate_index(doc)
        for ref in blob_refs(doc):
            self.blobs.verify(ref)
        fd, tmp = tempfile.mkstemp(dir=self.root, prefix=".index-")
        with os.fdopen(fd, "w", encoding="utf-8") as out:
            json.dump(doc, out, sort_keys=True, indent=1)
        os.replace(tmp, self.index_path)
        return self.index_path

    def sync(self, source: IndexSource) -> SyncResult:
        """Make this copy hold ``source``'s current version; keep the old one if that fails."""
        current = self.read()
        version = current.get("version") if current else None
        etag = self._etag if self._location == source.location else None
        try:
            doc, tag = source.fetch_index(etag)
            if doc is None:
                return SyncResult(False, version)
            validate_index(doc)
            if current is not None and doc == current:
                self._etag, self._location = tag, source.location
                return SyncResult(False, version)
            for ref in blob_refs(doc):
                if not self._present(ref):
                    source.fetch_blob(ref, self.blobs.path(ref["sha256"]))
            self.write_index(doc)
        except KBError as exc:
            level = LOG.warning if isinstance(exc, (KBUnavailableError, KBNotFoundError)) else LOG.error
            level("KB copy %s kept version %s: %s", self.root, version, exc)
            return SyncResult(False, version, f"{type(exc).__name__}: {exc}")
        self._etag, self._location = tag, source.location
        keep = {ref["sha256"] for ref in blob_refs(doc)}
        if current is not None:
            keep |= {ref["sha256"] for ref in blob_refs(current)}  # a reader may still hold the previous version
        self.blobs.sweep(keep)
        LOG.info("KB copy %s now holds version %s (was %s)", self.root, doc.get("version"), version)
        return SyncResult(True, doc.get("version"))

    def _present(self, ref: dict[str, Any]) -> bool:
        try:
            self.blobs.verify(ref)
        except (KBNotFoundError, KBValidationError):
            return False
        return True
