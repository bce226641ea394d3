"""Incremental learning: inference, as Sedna's helmet-detection ``training/inference.py`` is written.

The camera is a folder of frames (``video_url``): each is one 8x8 digit image.
"""
# ruff: noqa: I001 (Sedna's import order, kept on purpose)

import json
import os

import numpy as np

from sedna.common.class_factory import ClassFactory, ClassType
from sedna.common.config import Context
from sedna.common.file_ops import FileOps
from sedna.core.incremental_learning import IncrementalLearning
from interface import Estimator


he_saved_url = Context.get_parameters("HE_SAVED_URL", '/tmp')
rsl_saved_url = Context.get_parameters("RESULT_SAVED_URL", '/tmp')
class_names = [str(i) for i in range(10)]

FileOps.clean_folder([he_saved_url, rsl_saved_url], clean=False)


def output_deal(is_hard_example, infer_result, nframe, frame_name):
    label = int(np.argmax(infer_result))
    record = {"frame": frame_name, "label": class_names[label],
              "hard": bool(is_hard_example)}
    if is_hard_example:
        with open(f"{he_saved_url}/{nframe}.json", "w") as fout:
            json.dump(record, fout)
    with open(f"{rsl_saved_url}/{nframe}.json", "w") as fout:
        json.dump(record, fout)


@ClassFactory.register(ClassType.CALLBACK)
def deal_infer_rsl(model_output):
    return model_output[0].tolist()


def run():
    camera_address = Context.get_parameters('video_url')

    # get hard exmaple mining algorithm from config
    hard_example_mining = IncrementalLearning.get_hem_algorithm_from_config(
        threshold_cross_entropy=0.5
    )

    input_shape_str = Context.get_parameters("input_shape", "8,8")
    input_shape = tuple(int(v) for v in input_shape_str.split(","))
    # create Incremental Learning instance
    incremental_instance = IncrementalLearning(
        estimator=Estimator, hard_example_mining=hard_example_mining
    )
    # the input of the (stand-in) video stream
    for nframe, name in enumerate(sorted(os.listdir(camera_address))):
        img = np.load(os.path.join(camera_address, name)).reshape(input_shape) / 16.0
        _, final, is_hard_example = incremental_instance.inference(
            img, post_process="deal_infer_rsl", input_shape=input_shape)
        output_deal(is_hard_example, final, nframe, name)


if __name__ == "__main__":
    run()
