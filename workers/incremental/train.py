"""The train worker: fine-tune the digits model from ``BASE_MODEL_URL`` on ``TRAIN_DATASET_URL``.

Saves into ``MODEL_URL`` (the round's output directory) and reports the model to the LC.
Parameters (env, Sedna's ``Context.get_parameters``): ``epochs`` (20), ``learning_rate`` (0.5),
``batch_size`` (32). Exit code 0 on success, 1 when training failed (reported first), 2 on bad config.
"""

from __future__ import annotations

import sys
from collections.abc import Mapping

from sedna.common.config import Context, WorkerConfig
from sedna.common.errors import ConfigError, DataSourceError
from sedna.common.log import configure, get_logger

LOG = get_logger("workers.incremental.train")


def main(environ: Mapping[str, str] | None = None) -> int:
    configure()
    from sedna.core.incremental_learning import IncrementalLearning
    from workers.incremental.model import DigitsSoftmax, load_samples

    try:
        cfg = WorkerConfig.from_env(environ)
        ctx = Context(cfg.environ)
        if not cfg.train_dataset_url:
            raise ConfigError("TRAIN_DATASET_URL is not set: the train worker needs the round's sample file")
        data = load_samples(cfg.train_dataset_url)
        epochs = ctx.get_int("epochs", 20)
        rate = ctx.get_float("learning_rate", 0.5)
        batch = ctx.get_int("batch_size", 32)
    except (ConfigError, DataSourceError, ValueError) as exc:
        LOG.error("cannot start the train worker: %s", exc)
        return 2
    LOG.info("training on %d samples from %s (base %s)", len(data), cfg.train_dataset_url, cfg.base_model_url)
    try:
        IncrementalLearning(DigitsSoftmax, config=cfg).train(data, epochs=epochs, learning_rate=rate,
                                                             batch_size=batch)
    except Exception as exc:  # reported to the LC by the SDK; the exit code marks the stage Failed
        LOG.error("training failed: %s: %s", type(exc).__name__, exc)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
