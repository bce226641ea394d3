"""The cloud aggregation worker: ``python -m workers.federated.aggregator``.

Configured by env only: every variable is listed in :mod:`sedna.service.aggregation.environment`
(Sedna's contract - ``AGG_BIND_IP``/``AGG_BIND_PORT``, ``PARTICIPANTS_COUNT``, ``exit_round``,
``aggregation``/``aggregation_algorithm``, ``MODEL_URL`` - plus this project's deadlines,
checkpoints, tokens, per-trainer credentials and sample caps).

After every aggregated round the worker reports to its Local Controller (``LC_SERVER``; ownerKind
``federatedlearningjob``, kind ``aggregation``, ownerInfo ``{currentRound, clients, failures,
metrics, startTime, updateTime}`` with the global model's federated evaluation as ``metrics``),
so the round count and accuracy reach the job's and the Model's status.

With ``TRANSMITTER=s3`` models travel through ``AGG_DATA_PATH`` in S3 and only references through the
channel (:mod:`sedna.service.aggregation.s3_server`).

Exit status: 0 when the job finished, 2 when a round failed too often or S3 failed for good, 1 on bad config.
"""

from __future__ import annotations

import signal
import sys
import threading
from collections.abc import Mapping

from sedna.common.errors import SednaError
from sedna.common.log import configure, get_logger
from sedna.service.aggregation import AggregationServer, RoundFailedError
from sedna.service.aggregation.environment import build_server
from sedna.service.aggregation.transmit import TransmitError

LOG = get_logger("workers.federated.aggregator")


def build(environ: Mapping[str, str] | None = None) -> AggregationServer:
    """The server a worker environment describes."""
    return build_server(environ)


def main(environ: Mapping[str, str] | None = None) -> int:
    """Run the aggregation server until the job ends; returns the exit status."""
    configure(environ=environ)
    try:
        server = build(environ)
    except (SednaError, ValueError) as exc:
        LOG.error("bad configuration: %s", exc)
        return 1
    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGTERM, lambda *_: server.stop_soon())
    try:
        result = server.serve()
    except (RoundFailedError, TransmitError) as exc:
        LOG.error("%s", exc)
        return 2
    LOG.info("done: %d rounds (%s)", result.rounds, result.reason)
    return 0


if __name__ == "__main__":
    sys.exit(main())
