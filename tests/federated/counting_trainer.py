"""A trainer process for tests: its model is ``w`` (4 float32), each round adds 1.

After ``R`` rounds of FedAvg over such clients the global model is exactly ``R``, so a
test can tell lost or repeated rounds from the weights alone. ``TRAIN_SLEEP`` makes a
round last long enough to kill a process in the middle of it. Run with
``python -m tests.federated.counting_trainer``; env as for any trainer.
"""

from __future__ import annotations

import os
import sys
import time

import numpy as np

from sedna.common.log import configure
from sedna.core.federated_learning import FederatedLearning


class Counter:
    def __init__(self) -> None:
        self.w = np.zeros(4, np.float32)

    def get_weights(self) -> list[np.ndarray]:
        return [self.w.copy()]

    def set_weights(self, weights: list[np.ndarray]) -> None:
        self.w = np.array(weights[0], np.float32)

    def train(self, train_data: list[int], sleep: float = 0.0) -> dict[str, float]:
        time.sleep(sleep)
        self.w = self.w + 1.0
        return {"loss": 1.0}


def main() -> int:
    configure()
    est = Counter()
    fl = FederatedLearning(est)
    assert fl.train(list(range(10)), sleep=float(os.environ.get("TRAIN_SLEEP", "0"))) is est
    info = fl.stop_info
    assert info is not None
    out = os.environ.get("RESULT_FILE")
    if out:
        np.save(out, est.w)
    print(f"finished round={info.round} w={est.w.tolist()}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
