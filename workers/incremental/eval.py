"""The eval worker: evaluate every model of ``MODEL_URLS`` (new, then deployed) on ``TEST_DATASET_URL``.

Metrics per model: ``accuracy``, ``loss`` and per-class ``precision`` (a list). Exit code 0 on
success, 1 when evaluation failed (reported first), 2 on bad config.
"""

from __future__ import annotations

import sys
from collections.abc import Mapping

from sedna.common.config import WorkerConfig
from sedna.common.errors import ConfigError, DataSourceError
from sedna.common.log import configure, get_logger

LOG = get_logger("workers.incremental.eval")


def main(environ: Mapping[str, str] | None = None) -> int:
    configure()
    from sedna.core.incremental_learning import IncrementalLearning
    from workers.incremental.model import DigitsSoftmax, load_samples

    try:
        cfg = WorkerConfig.from_env(environ)
        if not cfg.test_dataset_url:
            raise ConfigError("TEST_DATASET_URL is not set: the eval worker needs the round's sample file")
        data = load_samples(cfg.test_dataset_url)
    except (ConfigError, DataSourceError) as exc:
        LOG.error("cannot start the eval worker: %s", exc)
        return 2
    try:
        results = IncrementalLearning(DigitsSoftmax, config=cfg).evaluate(data)
    except Exception as exc:  # reported to the LC by the SDK
        LOG.error("evaluation failed: %s: %s", type(exc).__name__, exc)
        return 1
    for item in results:
        LOG.info("%s: accuracy %.4f on %d samples", item["url"], item["metrics"]["accuracy"], len(data))
    return 0


if __name__ == "__main__":
    sys.exit(main())
