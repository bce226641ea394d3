"""A real inference server process for the attacks: ``python -m tests.security.rest_entry PORT``.

Serves ``LinearModel`` (y = x @ W, FP32 [-1, 4]) and ``TwoInputModel`` over REST until killed.
"""

from __future__ import annotations

import sys

from sedna.service.inference import InferenceServer
from tests.service.test_inference_support import LinearModel, TwoInputModel


def main() -> None:
    server = InferenceServer([LinearModel(max_batch_size=0), TwoInputModel()], rest_port=int(sys.argv[1]),
                             grpc_port=None)
    server.serve_forever()


if __name__ == "__main__":
    main()
