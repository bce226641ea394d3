"""The train worker: initial training, or (``HAS_COMPLETED_INITIAL_TRAINING=true``) a KB update.

Reads ``TRAIN_DATASET_URL`` (:mod:`workers.lifelong.data`; ``attribute`` names task-attribute
columns), trains :class:`~workers.lifelong.model.TaskSoftmax` task models through
:class:`~sedna.core.lifelong_learning.LifelongLearning`, writes the knowledge base to
``OUTPUT_URL`` and registers it with ``KB_SERVER``, and reports to the LC. Parameters:
``epochs`` (30), ``learning_rate`` (0.5), ``batch_size`` (32), ``input_scale`` (1/16), the
algorithm choices (:mod:`workers.lifelong.common`). Exit 0 on success, 1 when training failed
(reported first), 2 on bad configuration or data.
"""

from __future__ import annotations

import sys
from collections.abc import Mapping

from sedna.common.config import WorkerConfig
from sedna.common.errors import ConfigError, DataSourceError, RegistryError
from sedna.common.log import configure, get_logger

LOG = get_logger("workers.lifelong.train")


def main(environ: Mapping[str, str] | None = None) -> int:
    configure()
    from workers.lifelong.common import learner, report_startup_failure, train_params
    from workers.lifelong.data import load_table

    try:
        cfg = WorkerConfig.from_env(environ)
        if not cfg.train_dataset_url:
            raise ConfigError("TRAIN_DATASET_URL is not set: the train worker needs the round's sample file")
        ll = learner(cfg)
        data = load_table(cfg.train_dataset_url, ll.attribute)
        params = train_params(cfg)
    except (ConfigError, DataSourceError, RegistryError, ValueError) as exc:
        LOG.error("cannot start the train worker: %s", exc)
        report_startup_failure(environ, "train", exc)
        return 2
    LOG.info("training on %d samples from %s (update: %s)", len(data), cfg.train_dataset_url,
             ll.settings.has_completed_initial_training)
    try:
        ll.train(data, **params)
    except Exception as exc:  # reported to the LC by the SDK; the exit code marks the stage Failed
        LOG.error("training failed: %s: %s", type(exc).__name__, exc)
        return 1
    LOG.info("knowledge base version %s at %s", ll.knowledge.version if ll.knowledge else None, ll.last_index_url)
    return 0


if __name__ == "__main__":
    sys.exit(main())
