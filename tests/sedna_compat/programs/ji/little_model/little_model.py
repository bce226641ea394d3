"""Joint inference, edge side, as Sedna's helmet-detection ``little_model/little_model.py`` is written.

The camera is a folder of frames (``video_url``), each an 8x8 digit image; results are
written as JSON where the original draws boxes into JPEGs.
"""
# ruff: noqa: I001 (Sedna's import order, kept on purpose)

import json
import os
import logging

import numpy as np

from sedna.common.config import Context
from sedna.common.file_ops import FileOps
from sedna.common.log import LOGGER
from sedna.core.joint_inference import JointInference

from interface import Estimator


LOG = logging.getLogger(__name__)

camera_address = Context.get_parameters('video_url')

all_output_path = Context.get_parameters(
    'all_examples_inference_output'
)
hard_example_edge_output_path = Context.get_parameters(
    'hard_example_edge_inference_output'
)
hard_example_cloud_output_path = Context.get_parameters(
    'hard_example_cloud_inference_output'
)

FileOps.clean_folder([
    all_output_path,
    hard_example_cloud_output_path,
    hard_example_edge_output_path
], clean=False)


def top_label(result):
    return int(np.argmax(result))


def output_deal(final_result, is_hard_example, cloud_result, edge_result, nframe, name):
    record = {"frame": name, "label": top_label(final_result), "hard": bool(is_hard_example)}
    with open(f"{all_output_path}/{nframe}.json", "w") as fout:
        json.dump(record, fout)

    # save hard example results to dir
    if not is_hard_example:
        return

    if cloud_result is not None:
        with open(f"{hard_example_cloud_output_path}/{nframe}.json", "w") as fout:
            json.dump(record, fout)
    with open(f"{hard_example_edge_output_path}/{nframe}.json", "w") as fout:
        json.dump({"frame": name, "label": top_label(edge_result)}, fout)


def main():

    # get hard exmaple mining algorithm from config
    hard_example_mining = JointInference.get_hem_algorithm_from_config(
        threshold_cross_entropy=float(Context.get_parameters("threshold", 0.85))
    )

    inference_instance = JointInference(
        estimator=Estimator,
        hard_example_mining=hard_example_mining
    )

    frames = sorted(os.listdir(camera_address))
    LOGGER.info(f"camera is open, {len(frames)} frames")
    for nframe, name in enumerate(frames):
        img = np.load(os.path.join(camera_address, name)).ravel() / 16.0
        is_hard_example, final_result, edge_result, cloud_result = (
            inference_instance.inference(img)
        )
        output_deal(final_result, is_hard_example, cloud_result, edge_result, nframe, name)
    LOG.info("camera closed")


if __name__ == '__main__':
    main()
