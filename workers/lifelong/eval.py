"""The eval worker: score every task group of ``MODEL_URLS``' index on ``TEST_DATASET_URL``.

Groups whose first metric satisfies ``operator`` ``model_threshold`` are marked not deployed;
the resulting version is published when ``publish`` is true (default). Exit 0 on success, 1
when evaluation failed (reported first), 2 on bad configuration or data.
"""

from __future__ import annotations

import sys
from collections.abc import Mapping

from sedna.common.config import WorkerConfig
from sedna.common.errors import ConfigError, DataSourceError, RegistryError
from sedna.common.log import configure, get_logger

LOG = get_logger("workers.lifelong.eval")


def main(environ: Mapping[str, str] | None = None) -> int:
    configure()
    from workers.lifelong.common import learner, report_startup_failure
    from workers.lifelong.data import load_table

    try:
        cfg = WorkerConfig.from_env(environ)
        if not cfg.test_dataset_url:
            raise ConfigError("TEST_DATASET_URL is not set: the eval worker needs the round's sample file")
        ll = learner(cfg)
        data = load_table(cfg.test_dataset_url, ll.attribute)
    except (ConfigError, DataSourceError, RegistryError, ValueError) as exc:
        LOG.error("cannot start the eval worker: %s", exc)
        report_startup_failure(environ, "eval", exc)
        return 2
    try:
        result = ll.evaluate(data)
    except Exception as exc:
        LOG.error("evaluation failed: %s: %s", type(exc).__name__, exc)
        return 1
    LOG.info("version %s: overall %s, dropped %s", result["version"], result["overall"], result["dropped"] or "none")
    return 0


if __name__ == "__main__":
    sys.exit(main())
