"""An edge worker's LC reporting, as Sedna's JointInference sets it up (its ``__init__``).

The message is Sedna's: ``ownerName`` from ``JOB_NAME`` (default ``sedna``), ``ownerKind``
``jointinferenceservice``, no status, empty results. It counts ``samples`` inferences (every
fourth a hard example), waits ``wait`` report periods, and prints what its reporter did.
"""

import json
import time

from sedna.common.config import BaseConfig, Context
from sedna.service.client import LCReporter


def main():
    config = BaseConfig()
    report_msg = {
        "name": config.worker_name,
        "namespace": config.namespace,
        "ownerName": config.job_name,
        "ownerKind": "jointinferenceservice",
        "kind": "inference",
        "results": []
    }
    period_interval = float(Context.get_parameters("LC_PERIOD", "30"))
    lc_reporter = LCReporter(lc_server=config.lc_server, message=report_msg, period_interval=period_interval)
    lc_reporter.start()

    for nframe in range(int(Context.get_parameters("samples", "20"))):
        if nframe % 4 == 0:
            lc_reporter.update_for_collaboration_inference()
        else:
            lc_reporter.update_for_edge_inference()
    time.sleep(period_interval * float(Context.get_parameters("wait", "3")))
    print(json.dumps({"alive": lc_reporter.is_alive(), "sent": lc_reporter.sent, "refused": lc_reporter.refused}))


if __name__ == '__main__':
    main()
