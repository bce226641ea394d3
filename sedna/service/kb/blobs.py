"""A content-addressed file store: ``<root>/blobs/<sha256>``, written once, checked on the way in.

Both the KB server and every local copy of a knowledge base (the edge's, a train worker's output
directory) keep files this way. :meth:`BlobStore.put_stream` writes to a temporary file while
hashing, refuses more than ``max_bytes``, a hash other than the expected one, and a file that is
not what its format says (:func:`check_format`); only then is it renamed into place, so a
half-written or rejected upload never becomes visible. Nothing here unpickles: ``.npy`` / ``.npz``
headers are read without the data and object arrays are refused; ``.onnx`` files must parse and
pass the ONNX checker.
"""

from __future__ import annotations

import hashlib
import os
import tempfile
import zipfile
from collections.abc import Iterable
from pathlib import Path
from typing import Any, BinaryIO

from sedna.service.kb.errors import KBNotFoundError, KBValidationError
from sedna.service.kb.schema import BLOB_FORMATS

DEFAULT_MAX_BLOB_BYTES = 256 * 1024 * 1024
_CHUNK = 1024 * 1024


def sha256_file(path: str | Path) -> str:
    """The sha256 (hex) of a file's content."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(_CHUNK), b""):
            digest.update(chunk)
    return digest.hexdigest()


def _check_npy_header(handle: BinaryIO, where: str) -> None:
    import numpy as np

    try:
        version = np.lib.format.read_magic(handle)
        if version == (1, 0):
            _, _, dtype = np.lib.format.read_array_header_1_0(handle)
        else:
            _, _, dtype = np.lib.format.read_array_header_2_0(handle)
    except (ValueError, OSError) as exc:
        raise KBValidationError("blob", f"{where} is not a valid .npy array ({exc})") from None
    if dtype.hasobject:
        raise KBValidationError("blob", f"{where} holds Python objects (dtype {dtype}); only numeric arrays are "
                                        f"accepted, nothing is unpickled")


def check_format(path: str | Path, fmt: str) -> None:
    """Raise KBValidationError unless ``path`` is a well-formed file of format ``fmt``."""
    if fmt not in BLOB_FORMATS:
        raise KBValidationError("format", f"{fmt!r} is not one of {', '.join(BLOB_FORMATS)}")
    if fmt == "npy":
        with open(path, "rb") as handle:
            _check_npy_header(handle, "the file")
    elif fmt == "npz":
        try:
            with zipfile.ZipFile(path) as archive:
                names = archive.namelist()
                if not names:
                    raise KBValidationError("blob", "the .npz archive is empty")
                for name in names:
                    if not name.endswith(".npy"):
                        raise KBValidationError("blob", f"the .npz member {name!r} is not a .npy array")
                    with archive.open(name) as member:
                        _check_npy_header(member, f"the .npz member {name!r}")  # type: ignore[arg-type]
        except zipfile.BadZipFile as exc:
            raise KBValidationError("blob", f"not a valid .npz archive ({exc})") from None
    else:
        import onnx

        try:
            model = onnx.load(str(path))
            onnx.checker.check_model(model)
        except Exception as exc:  # onnx raises DecodeError, ValidationError, ...
            raise KBValidationError("blob", f"not a valid ONNX model ({type(exc).__name__}: {exc})") from None


class BlobStore:
    """Files by sha256 under ``root/blobs``."""

    def __init__(self, root: str | Path, max_bytes: int = DEFAULT_MAX_BLOB_BYTES) -> None:
        self.root = Path(root) / "blobs"
        self.root.mkdir(parents=True, exist_ok=True)
        self.max_bytes = max_bytes

    def path(self, sha256: str) -> Path:
        if len(sha256) != 64 or any(c not in "0123456789abcdef" for c in sha256):
            raise KBValidationError("sha256", f"{sha256!r} is not a lowercase hex sha256")
        return self.root / sha256

    def has(self, sha256: str) -> bool:
        return self.path(sha256).exists()

    def open(self, sha256: str) -> Path:
        """The file of ``sha256``; KBNotFoundError when absent."""
        p = self.path(sha256)
        if not p.exists():
            raise KBNotFoundError(f"blob {sha256} is not in {self.root}")
        return p

    def put_stream(self, chunks: Iterable[bytes], fmt: str, expected: str | None = None,
                   expected_size: int | None = None) -> dict[str, Any]:
        """Store the bytes of ``chunks``; return the blob reference ``{sha256, size, format}``."""
        if fmt not in BLOB_FORMATS:
            raise KBValidationError("format", f"{fmt!r} is not one of {', '.join(BLOB_FORMATS)}")
        digest, size = hashlib.sha256(), 0
        fd, tmp_name = tempfile.mkstemp(dir=self.root, prefix=".upload-")
        tmp = Path(tmp_name)
        try:
            with os.fdopen(fd, "wb") as out:
                for chunk in chunks:
                    size += len(chunk)
                    if size > self.max_bytes:
                        raise KBValidationError("blob", f"larger than the limit of {self.max_bytes} bytes", 413)
                    digest.update(chunk)
                    out.write(chunk)
            sha = digest.hexdigest()
            if expected is not None and sha != expected:
                raise KBValidationError("sha256", f"content hashes to {sha}, not the expected {expected}")
            if expected_size is not None and size != expected_size:
                raise KBValidationError("size", f"content has {size} bytes, not the expected {expected_size}")
            check_format(tmp, fmt)
            final = self.path(sha)
            if final.exists():
                tmp.unlink()
            else:
                os.replace(tmp, final)
        except BaseException:
            tmp.unlink(missing_ok=True)
            raise
        return {"sha256": sha, "size": size, "format": fmt}

    def put_file(self, path: str | Path, fmt: str | None = None) -> dict[str, Any]:
        """Store a local file (format from its suffix unless given)."""
        source = Path(path)
        fmt = fmt or source.suffix.lstrip(".")
        with source.open("rb") as handle:
            return self.put_stream(iter(lambda: handle.read(_CHUNK), b""), fmt)

    def verify(self, ref: dict[str, Any]) -> Path:
        """The file of ``ref`` after re-checking its size and hash (KBValidationError on mismatch)."""
        p = self.open(ref["sha256"])
        if p.stat().st_size != ref["size"]:
            raise KBValidationError("size", f"blob {ref['sha256']} has {p.stat().st_size} bytes, the index says "
                                            f"{ref['size']}")
        return p

    def sweep(self, keep: set[str]) -> int:
        """Delete blobs not in ``keep`` (and stale uploads); return how many files went."""
        removed = 0
        for p in self.root.iterdir():
            if p.name not in keep:
                p.unlink(missing_ok=True)
                removed += 1
        return removed
