# ruff: noqa: I001  (imports in the order of Sedna's example)
# The inference program of Sedna's surface-defect example: it builds FederatedLearning only to
# call inference(). It loads the model the trainer saved (Sedna's example forgot to) and
# prints the predicted class of every test sample.
import json
import os

import numpy as np

from sedna.common.config import Context
from sedna.datasources import TxtDataParse
from sedna.core.federated_learning import FederatedLearning

from interface import Estimator


def image_process(line):
    file_path, label = line.split(',')
    original_dataset_url = Context.get_parameters('original_dataset_url')
    root_path = os.path.dirname(original_dataset_url)
    file_path = os.path.join(root_path, file_path)
    data = np.array(np.load(file_path))
    label = np.array(np.eye(10)[int(label)])
    return [data, label]


def main():
    fl_instance = FederatedLearning(estimator=Estimator)
    fl_instance.estimator.load(fl_instance.model_path)

    # load dataset.

    test_data = TxtDataParse(data_type="test", func=image_process)
    test_data.parse(fl_instance.config.test_dataset_url)

    return fl_instance.inference(test_data.x)


if __name__ == '__main__':
    print(json.dumps(main().argmax(axis=1).tolist()))
