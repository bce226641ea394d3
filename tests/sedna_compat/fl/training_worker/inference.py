# ruff: noqa: I001  (imports in the order of Sedna's example)
# The inference program of Sedna's surface-defect example: it builds FederatedLearning only to
# call inference(). It loads the model the trainer saved (Sedna's example forgot to) and
# prints the accuracy on the test index.
import json
import os

import numpy as np

from sedna.common.config import Context
from sedna.datasources import TxtDataParse
from sedna.core.federated_learning import FederatedLearning

from interface import Estimator


def image_process(line):
    file_path, label = line.split(',')
    original_dataset_url = Context().get_parameters('test_dataset_url')
    root_path = os.path.dirname(original_dataset_url)
    file_path = os.path.join(root_path, file_path)
    return np.load(file_path), np.eye(10)[int(label)]


def main():
    fl_instance = FederatedLearning(estimator=Estimator)
    fl_instance.estimator.load(fl_instance.model_path)

    # load dataset.

    test_data = TxtDataParse(data_type="test", func=image_process)
    test_data.parse(fl_instance.config.test_dataset_url)

    return fl_instance.inference(test_data.x), test_data.y


if __name__ == '__main__':
    proba, labels = main()
    truth = np.stack(list(labels)).argmax(axis=1)
    print(json.dumps({"accuracy": float((proba.argmax(axis=1) == truth).mean())}))
