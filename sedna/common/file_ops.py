"""Sedna's ``FileOps``: paths, folders, and moving files between local disk, HTTP and S3.

Programs written for Sedna call these class methods (``FileOps.join_path``,
``clean_folder``, ``download``, ``upload``, ``exists``, ``dump``, ``load`` ...); the names,
arguments and return values are Sedna's. Differences, each on purpose:

- Downloads go through :func:`sedna.common.downloads.fetch` (streamed, resumable, an
  optional ``sha256`` check, errors naming the URL) instead of ``urlretrieve``; S3 uses
  boto3 (:mod:`sedna.common.s3`) with Sedna's env names.
- :meth:`FileOps.dump` / :meth:`FileOps.load` store JSON, ``.npy`` and ``.npz`` (see
  :mod:`sedna.common.serialization`) instead of joblib pickles. Pickle is used only when
  the caller passes ``allow_pickle=True``, and :meth:`load` never unpickles a file it
  had to download, whatever the flag: data from a network is never unpickled.
- Extracting an archive refuses members that would land outside the target folder.
"""

from __future__ import annotations

import hashlib
import os
import re
import shutil
import tarfile
import tempfile
from pathlib import Path
from typing import Any

from sedna.common import serialization
from sedna.common.downloads import DownloadError, fetch, is_http, sha256_file

__all__ = ["DownloadError", "FileOps", "sha256_file"]


class FileOps:
    """Class methods for files and folders, local or remote (``http(s)://``, ``s3://``)."""

    _S3_PREFIX = "s3://"
    _LOCAL_PREFIX = "file://"
    _URI_RE = "https?://(.+)/(.+)"

    # -- paths and folders -------------------------------------------------------------------------
    @classmethod
    def join_path(cls, *args: str) -> str:
        """Join path parts; later parts are relative even when they start with ``/`` (Sedna's rule).

        The first part may be a URL (``s3://bucket``, ``http://host``); ``/`` joins the rest.
        """
        if len(args) == 1:
            return args[0]
        parts = [str(part) for part in args]
        root = os.sep if parts[0].startswith(os.sep) else ""
        parts = [part.lstrip(os.sep) for part in parts]
        parts[0] = root + parts[0]
        if ":" not in parts[0]:
            return os.path.join(*parts)
        return os.path.join(parts[0], os.path.join(*parts[1:]))

    @classmethod
    def make_dir(cls, *args: str) -> None:
        """Create the directory the joined parts name (and its parents)."""
        os.makedirs(cls.join_path(*args), exist_ok=True)

    @classmethod
    def make_base_dir(cls, *args: str) -> None:
        """Create the parent directory of the file the joined parts name."""
        path = cls.join_path(*args)
        if not os.path.isfile(path):
            os.makedirs(os.path.dirname(path) or ".", exist_ok=True)

    @classmethod
    def clean_folder(cls, target: str | list[Any], clean: bool = True) -> list[Any]:
        """Create each folder of ``target``; with ``clean`` empty it first. ``None`` entries are skipped.

        A path that names an existing file stands for its parent folder (the file is kept
        unless ``clean``).
        """
        targets = [target] if isinstance(target, (str, os.PathLike)) else list(target)
        for path in {str(p) for p in targets if p}:
            if clean:
                cls.delete(path)
            folder = os.path.dirname(path) if os.path.isfile(path) else path
            os.makedirs(folder or ".", exist_ok=True)
        return targets

    @classmethod
    def delete(cls, path: str) -> None:
        """Remove a file or a directory tree; a missing path is fine."""
        if os.path.isdir(path) and not os.path.islink(path):
            shutil.rmtree(path, ignore_errors=True)
        elif os.path.lexists(path):
            os.remove(path)

    @classmethod
    def remove_path_prefix(cls, org_str: str, prefix: str) -> str:
        """``org_str`` without the leading ``prefix`` (a container path back to its host path)."""
        if not prefix:
            return org_str
        stem = prefix[:-1] if prefix.endswith(os.sep) else prefix
        return org_str[len(stem):] if org_str.startswith(stem) else org_str

    @classmethod
    def exists(cls, folder: str) -> bool:
        """Whether the local file or directory exists (``file://`` accepted)."""
        if not folder:
            return False
        path = str(folder).removeprefix(cls._LOCAL_PREFIX)
        return os.path.isdir(path) or os.path.isfile(path)

    @classmethod
    def is_local(cls, src: str) -> bool:
        return str(src).startswith(cls._LOCAL_PREFIX) or cls.exists(src)

    @classmethod
    def is_remote(cls, src: str) -> bool:
        return str(src).startswith(cls._S3_PREFIX) or bool(re.search(cls._URI_RE, str(src)))

    @classmethod
    def get_file_hash(cls, filepath: str) -> str:
        """Hex md5 of a file (Sedna's fingerprint); ``""`` when it is not a file. Use sha256 to verify."""
        if not (filepath and os.path.isfile(filepath)):
            return ""
        digest = hashlib.md5(usedforsecurity=False)
        with open(filepath, "rb") as handle:
            for block in iter(lambda: handle.read(1 << 20), b""):
                digest.update(block)
        return digest.hexdigest()

    # -- copies -----------------------------------------------------------------------------------
    @classmethod
    def copy_file(cls, src: str, dst: str) -> None:
        """Copy a file (into ``dst`` when it is a folder) or a whole folder."""
        if not dst:
            return
        if os.path.isfile(src):
            if os.path.isdir(dst):
                dst = os.path.join(dst, os.path.basename(src))
            if os.path.isfile(dst) and os.path.samefile(src, dst):
                return
            os.makedirs(os.path.dirname(dst) or ".", exist_ok=True)
            shutil.copy(src, dst)
        elif os.path.isdir(src):
            cls.copy_folder(src, dst)

    @classmethod
    def copy_folder(cls, src: str, dst: str) -> None:
        """Copy the folder ``src`` into ``dst``, merging with what is there."""
        if not dst or not os.path.isdir(src):
            return
        if os.path.isdir(dst) and os.path.samefile(src, dst):
            return
        shutil.copytree(src, dst, dirs_exist_ok=True)

    # -- transfers --------------------------------------------------------------------------------
    @classmethod
    def download(cls, src: str, dst: str | None = None, unzip: bool = False, *, sha256: str | None = None) -> str:
        """Fetch ``src`` (local, ``http(s)://``, ``s3://`` object or folder) to ``dst``; return the local path.

        ``dst`` None: a new temporary folder, keeping the file name. ``dst`` an existing
        folder: the file goes inside it. ``unzip`` extracts a ``.tar.gz``/``.tgz``/``.tar``
        next to it. ``sha256`` checks a single file.
        """
        src = str(src)
        name = os.path.basename(src.rstrip("/")) or "download"
        if dst is None:
            dst = os.path.join(tempfile.mkdtemp(prefix="sedna-download-"), name)
        dst = str(dst)
        if src.startswith(cls._S3_PREFIX) and not sha256:
            from sedna.common import s3

            result = str(s3.download(src, dst))  # an object or a whole folder
        elif src.startswith(cls._S3_PREFIX):
            result = str(fetch(src, os.path.join(dst, name) if os.path.isdir(dst) else dst, sha256=sha256))
        elif is_http(src):
            target = os.path.join(dst, name) if os.path.isdir(dst) else dst
            result = str(fetch(src, target, sha256=sha256))
        else:
            local = src.removeprefix(cls._LOCAL_PREFIX)
            if not cls.exists(local):
                raise DownloadError(f"cannot download {src!r}: no such file or directory")
            if os.path.isdir(local):
                cls.copy_folder(local, dst)
                result = dst
            else:
                target = os.path.join(dst, os.path.basename(local)) if os.path.isdir(dst) else dst
                result = str(fetch(local, target, sha256=sha256))
        if unzip and result.endswith((".tar.gz", ".tgz", ".tar")):
            cls._untar(result)
        return result

    @classmethod
    def upload(cls, src: str, dst: str | None, tar: bool = False, clean: bool = True) -> str:
        """Copy the local ``src`` (file or folder) to ``dst`` (local path or ``s3://``); return ``dst``.

        As in Sedna, ``clean`` (the default) removes a local ``src`` once it has been copied
        to a different place: pass ``clean=False`` to keep it.
        """
        if dst is None:
            dst = os.path.join(tempfile.mkdtemp(prefix="sedna-upload-"), os.path.basename(str(src)))
        src, dst = str(src), str(dst)
        if not cls.is_local(src):  # remote to remote: through a temporary copy, removed afterwards
            folder = tempfile.mkdtemp(prefix="sedna-upload-")
            try:
                return cls.upload(cls.download(src, os.path.join(folder, os.path.basename(src.rstrip("/")))), dst,
                                  tar=tar, clean=True)
            finally:
                shutil.rmtree(folder, ignore_errors=True)
        src = src.removeprefix(cls._LOCAL_PREFIX)
        if tar:
            cls._tar(src, f"{src}.tar.gz")
            src = f"{src}.tar.gz"
        if dst.startswith(cls._S3_PREFIX):
            from sedna.common import s3

            s3.upload(src, dst)
        elif is_http(dst):
            raise DownloadError(f"cannot upload to {dst!r}: only local paths and s3:// are writable")
        else:
            local_dst = dst.removeprefix(cls._LOCAL_PREFIX)
            if os.path.exists(local_dst) and os.path.exists(src) and os.path.samefile(src, local_dst):
                return dst
            cls.copy_file(src, local_dst)
        if clean and os.path.exists(src):
            cls.delete(src)
        return dst

    # -- objects ----------------------------------------------------------------------------------
    @classmethod
    def dump(cls, obj: Any, dst: str | None = None, *, allow_pickle: bool = False) -> str:
        """Write ``obj`` (JSON data, a numpy array, or a dict of arrays) and upload it to ``dst``.

        Other objects need ``allow_pickle=True`` (and are then pickled: keep such files local).
        """
        suffix = serialization.suffix_for(obj, dst, allow_pickle)
        folder = tempfile.mkdtemp(prefix="sedna-dump-")
        path = serialization.dump(obj, os.path.join(folder, "object" + suffix), allow_pickle=allow_pickle)
        if dst is None:
            return path
        try:
            return cls.upload(path, dst, clean=True)
        finally:
            shutil.rmtree(folder, ignore_errors=True)

    @classmethod
    def load(cls, src: str, *, allow_pickle: bool = False) -> Any:
        """Read an object written by :meth:`dump` (JSON, ``.npy``, ``.npz``; pickle only if allowed and local)."""
        local = str(src).removeprefix(cls._LOCAL_PREFIX)
        if os.path.isfile(local):
            return serialization.load(local, allow_pickle=allow_pickle, source=str(src))
        folder = tempfile.mkdtemp(prefix="sedna-load-")
        try:
            path = cls.download(src, os.path.join(folder, os.path.basename(str(src).rstrip("/")) or "object"))
            return serialization.load(path, allow_pickle=False, source=str(src))  # downloaded: never unpickled
        finally:
            shutil.rmtree(folder, ignore_errors=True)

    @classmethod
    def dump_pickle(cls, obj: Any, filename: str) -> None:
        """Pickle ``obj`` to the local ``filename`` (explicitly chosen by the caller)."""
        cls.make_base_dir(filename)
        serialization.dump(obj, filename, allow_pickle=True, force_pickle=True)

    @classmethod
    def load_pickle(cls, filename: str) -> Any:
        """Unpickle the local ``filename``; a remote URL is refused (network data is never unpickled)."""
        if cls.is_remote(filename):
            raise ValueError(f"refusing to unpickle {filename!r}: data from a network is never unpickled")
        if not os.path.isfile(filename):
            return None
        return serialization.load(filename, allow_pickle=True, source=filename, force_pickle=True)

    # -- archives ---------------------------------------------------------------------------------
    @classmethod
    def _untar(cls, src: str, dst: str | None = None) -> None:
        target = dst or os.path.dirname(src)
        with tarfile.open(src) as archive:
            root = Path(target).resolve()
            for member in archive.getmembers():
                path = (root / member.name).resolve()
                if not path.is_relative_to(root) or member.issym() or member.islnk():
                    raise DownloadError(f"archive {src!r} member {member.name!r} would escape {target!r}; refused")
            if hasattr(tarfile, "data_filter"):
                archive.extractall(target, filter="data")
            else:  # an older Python without extraction filters: the members were checked above
                archive.extractall(target)

    @classmethod
    def _tar(cls, src: str, dst: str) -> None:
        with tarfile.open(dst, "w:gz") as archive:
            archive.add(src, arcname=os.path.basename(src.rstrip(os.sep)))
