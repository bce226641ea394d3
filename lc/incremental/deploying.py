"""Put a newly trained model into service: copy it over the deploy Model's file, write the hot-update config.

Copies go through a temporary file and ``os.replace``, so a reader (the inference worker, a
restarting Pod) sees the old file or the new one, never half of one. The hot-update config is
``{"model_config": {"model_path", "model_update_time", "round"}}``; the model it names is a
per-round copy under ``<outputDir>/deploy/<round>/`` so a later round can never overwrite the file
a worker is loading.
"""

from __future__ import annotations

import json
import os
import shutil
from datetime import datetime, timezone
from pathlib import Path

from sedna.controlplane.il_protocol import hot_update_config_path


def atomic_copy(source: str | Path, target: str | Path) -> str:
    src, dst = Path(source), Path(target)
    dst.parent.mkdir(parents=True, exist_ok=True)
    tmp = dst.with_name(f".{dst.name}.tmp")
    shutil.copyfile(src, tmp)
    os.replace(tmp, dst)
    return str(dst)


def deploy(trained: str, deploy_url: str, output_dir: str, round_: int, hot_update: bool) -> str:
    """Install ``trained``; return the path the hot-update config names ('' without hot update)."""
    if "://" in deploy_url and not deploy_url.startswith("file://"):
        raise ValueError(f"deploy model url {deploy_url!r} is remote; this LC deploys to local paths only")
    if not Path(trained).is_file():
        raise FileNotFoundError(f"trained model {trained!r} does not exist")
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
