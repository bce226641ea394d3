# ruff: noqa: I001  (imports in the order of Sedna's example)
# The training worker of Sedna's examples/federated_learning/surface_defect_detection, as a
# Sedna user writes it; only the image loading differs (8x8 digits stored as .npy files instead
# of Keras' load_img on PNGs).
import os

import numpy as np

from sedna.datasources import TxtDataParse
from sedna.common.config import Context, BaseConfig
from sedna.core.federated_learning import FederatedLearning

from interface import Estimator


def image_process(line):
    file_path, label = line.split(',')
    original_dataset_url = (
        BaseConfig.original_dataset_url or BaseConfig.train_dataset_url
    )
    root_path = os.path.dirname(original_dataset_url)
    file_path = os.path.join(root_path, file_path)
    data = np.load(file_path)
    label = np.eye(10)[int(label)]
    data = np.array(data)
    label = np.array(label)
    return [data, label]


def main():
    # load dataset.
    train_dataset_url = BaseConfig.train_dataset_url
    test_dataset_url = BaseConfig.test_dataset_url

    train_data = TxtDataParse(data_type="train", func=image_process)
    train_data.parse(train_dataset_url)

    valid_data = TxtDataParse(data_type="test", func=image_process)
    valid_data.parse(test_dataset_url)

    epochs = int(Context.get_parameters("epochs", 1))
    batch_size = int(Context.get_parameters("batch_size", 1))
    aggregation_algorithm = Context.get_parameters(
        "aggregation_algorithm", "FedAvg"
    )
    learning_rate = float(
        Context.get_parameters("learning_rate", 0.001)
    )
    validation_split = float(
        Context.get_parameters("validation_split", 0.2)
    )

    fl_model = FederatedLearning(
        estimator=Estimator,
        aggregation=aggregation_algorithm)

    train_jobs = fl_model.train(
        train_data=train_data,
        valid_data=valid_data,
        epochs=epochs,
        batch_size=batch_size,
        learning_rate=learning_rate,
        validation_split=validation_split
    )

    return train_jobs


if __name__ == '__main__':
    estimator = main()
    print(f"trained {type(estimator).__name__}", flush=True)
