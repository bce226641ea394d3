"""The edge training worker: ``python -m workers.federated.trainer``.

Trains :class:`~workers.federated.softmax.SoftmaxRegression` on the node's dataset and
takes part in the job through :class:`sedna.core.federated_learning.FederatedLearning`.
Configured by env only:

``TRAIN_DATASET_URL``  a CSV (header row, 64 feature columns, label last) or an npz (x, y)
``VALID_SPLIT``        share of local samples held out for evaluation (0.2; 0 disables)
``epochs``, ``batch_size``, ``learning_rate``  local training (5, 32, 0.5)
``AGG_IP`` / ``AGG_PORT``, ``WORKER_NAME``, ``JOB_NAME``, ``AGG_TOKEN``, ``AGG_CLIENT_TOKEN``, ``FL_COMPRESSION``
``MODEL_URL``          optional: where this node saves the global model after every round: an ``.npz``
                       path, or the job's model directory (the GM sets it to the Model's url), then
                       ``<dir>/<WORKER_NAME>.npz``
"""

from __future__ import annotations

import sys
from collections.abc import Mapping

from sedna.common.config import Context, WorkerConfig
from sedna.common.errors import SednaError
from sedna.common.log import configure, get_logger
from sedna.core.federated_learning import FederatedLearning
from workers.federated.softmax import SoftmaxRegression, load_samples

LOG = get_logger("workers.federated.trainer")


def main(environ: Mapping[str, str] | None = None) -> int:
    """Train until the aggregator stops the job; returns the exit status."""
    configure(environ=environ)
    cfg = WorkerConfig.from_env(environ)
    ctx = Context(cfg.environ)
    try:
        if not cfg.train_dataset_url:
            raise SednaError("TRAIN_DATASET_URL is not set (a CSV or npz file of 64-feature digits)")
        data = load_samples(cfg.train_dataset_url)
        split = ctx.get_float("VALID_SPLIT", 0.2)
        train, valid = data.split(split) if split > 0 else (data, None)
        hyper = {"epochs": ctx.get_int("epochs", 5),
                 "batch_size": ctx.get_int("batch_size", 32),
                 "learning_rate": ctx.get_float("learning_rate", 0.5)}
    except (SednaError, ValueError) as exc:
        LOG.error("bad configuration: %s", exc)
        return 1
    estimator = SoftmaxRegression(num_features=train.x.shape[1])
    fl = FederatedLearning(estimator, aggregation=str(ctx.get_parameters("aggregation", "FedAvg")), config=cfg)
    LOG.info("training on %d samples (%d held out), %s", len(train), len(valid) if valid else 0, hyper)
    fl.train(train, valid, **hyper)  # saves the global model each round (see FederatedLearning.model_path)
    info = fl.stop_info
    assert info is not None
    LOG.info("job ended after round %d: %s; model in %s", info.round, info.reason, fl.model_path or "(not saved)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
