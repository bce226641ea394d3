"""Put a newly trained model into service: copy it over the deploy Model's file, write the hot-update config.

Copies go through a temporary file and ``os.replace``, so a reader (the inference worker, a
restarting Pod) sees the old file or the new one, never half of one. The hot-update config is
``{"model_config": {"model_path", "model_update_time", "round"}}``; the model it names is a
per-round copy under ``<outputDir>/deploy/<round>/`` so a later round can never overwrite the file
a worker is loading.

Remote models (:mod:`lc.managers.remote`): a trained model at an ``s3://`` / ``http(s)://`` URL is
fetched into the LC's cache first; an ``s3://`` deploy Model is overwritten by an upload (S3 puts
are atomic: a reader gets the old object or the new one), and the recreated inference worker
downloads it through the storage initializer. Hot update reads a local config next to the worker,
so it needs a local ``outputDir``.
"""

from __future__ import annotations

import json
import os
import shutil
from datetime import datetime, timezone
from pathlib import Path

from lc.managers import remote
from sedna.controlplane.il_protocol import hot_update_config_path


def atomic_copy(source: str | Path, target: str | Path) -> str:
    src, dst = Path(source), Path(target)
    dst.parent.mkdir(parents=True, exist_ok=True)
    tmp = dst.with_name(f".{dst.name}.tmp")
    shutil.copyfile(src, tmp)
    os.replace(tmp, dst)
    return str(dst)


def _writable(url: str) -> bool:
    return url.startswith("s3://") or "://" not in url or url.startswith("file://")


def deploy(trained: str, deploy_url: str, output_dir: str, round_: int, hot_update: bool,
           cache_dir: Path | None = None) -> str:
    """Install ``trained``; return the path the hot-update config names ('' without hot update)."""
    if not _writable(deploy_url):
        raise ValueError(f"deploy model url {deploy_url!r} cannot be written (use a local path or s3://)")
    if hot_update and remote.is_remote(output_dir):
        raise ValueError(f"hot update needs a local spec.outputDir (the worker polls a file there), got "
                         f"{output_dir!r}; disable hotUpdateEnabled to deploy by recreating the worker")
    if remote.is_remote(trained):
        trained = str(remote.fetch_index(trained, cache_dir))  # raises RemoteError (an OSError) naming the URL
    elif not Path(trained).is_file():
        raise FileNotFoundError(f"trained model {trained!r} does not exist")
    if deploy_url.startswith("s3://"):
        remote.upload(trained, deploy_url)
    else:
        atomic_copy(trained, deploy_url.removeprefix("file://"))
    if not hot_update:
        return ""
    config = Path(hot_update_config_path(output_dir))
    served = atomic_copy(trained, config.parent / str(round_) / Path(trained).name)
    stamp = datetime.now(timezone.utc).isoformat(timespec="microseconds")
    tmp = config.with_name(f".{config.name}.tmp")
    tmp.write_text(json.dumps({"model_config": {"model_path": served, "model_update_time": stamp,
                                                "round": round_}}))
    os.replace(tmp, config)
    return served
