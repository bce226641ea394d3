"""A hostile federated participant: its update adds 1000 and claims ``CLAIMED_SAMPLES`` samples.

Run with ``python -m tests.security.fl_attacker``; env as for a trainer (``AGG_IP``, ``AGG_PORT``,
``WORKER_NAME``, ``JOB_NAME``), plus ``HELLO_SAMPLES`` (the count it declares when joining) and
``CLAIMED_SAMPLES`` (the count it claims with every update). It prints each refusal it gets.
"""

from __future__ import annotations

import os
import sys

import numpy as np

from sedna.common.log import configure
from sedna.service.aggregation.client import AggregationClient, ClientSettings, StopInfo


class Inflated:
    def __init__(self, claimed: int) -> None:
        self.claimed = claimed

    def get_weights(self) -> dict[str, np.ndarray]:
        return {"layer_0": np.zeros(4, np.float32)}

    def fit(self, server_round: int, weights: dict[str, np.ndarray], config: dict) -> tuple[dict, int, dict]:
        return {k: v + 1000.0 for k, v in weights.items()}, self.claimed, {}

    def evaluate(self, server_round: int, weights: dict, config: dict) -> tuple[int, float, dict]:
        return 0, 0.0, {}

    def on_rejected(self, server_round: int, reason: str) -> None:
        print(f"refused in round {server_round}: {reason}", flush=True)

    def on_stop(self, info: StopInfo) -> None:
        print(f"stopped at round {info.round}: {info.weights['layer_0'].tolist()}", flush=True)


def main() -> int:
    configure()
    env = os.environ
    settings = ClientSettings(target=f"{env['AGG_IP']}:{env['AGG_PORT']}", client_id=env["WORKER_NAME"],
                              job_name=env.get("JOB_NAME", ""), num_samples=int(env.get("HELLO_SAMPLES", "10")),
                              connect_timeout_s=60)
    AggregationClient(settings, Inflated(int(env.get("CLAIMED_SAMPLES", str(2**62))))).run()
    return 0


if __name__ == "__main__":
    sys.exit(main())
