"""Text joint inference, cloud side, as Sedna's answer-generation ``big_model/big_model.py`` is written."""
# ruff: noqa: I001 (Sedna's import order, kept on purpose)

from sedna.core.joint_inference import BigModelService
from interface import Estimator


def run():
    inference_instance = BigModelService(estimator=Estimator)
    inference_instance.start()


if __name__ == "__main__":
    run()
