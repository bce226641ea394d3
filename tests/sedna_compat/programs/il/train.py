"""Incremental learning: train, as Sedna's helmet-detection ``training/train.py`` is written."""
# ruff: noqa: I001 (Sedna's import order, kept on purpose)

import os

import numpy as np

from sedna.datasources import TxtDataParse
from sedna.common.config import Context, BaseConfig
from sedna.core.incremental_learning import IncrementalLearning

from interface import Estimator


def image_process(line):
    file_path, label = line.split(',')
    original_dataset_url = (
        BaseConfig.original_dataset_url or BaseConfig.train_dataset_url
    )
    root_path = os.path.dirname(original_dataset_url)
    file_path = os.path.join(root_path, file_path)
    data = np.load(file_path).ravel() / 16.0
    return [data, int(label)]


def main():
    # load dataset.
    train_dataset_url = BaseConfig.train_dataset_url
    train_data = TxtDataParse(data_type="train", func=image_process)
    train_data.parse(train_dataset_url)

    # read parameters from deployment config.
    epochs = int(Context.get_parameters("epochs", 1))
    learning_rate = float(Context.get_parameters("learning_rate", 0.5))
    class_names = Context.get_parameters("class_names")

    incremental_instance = IncrementalLearning(estimator=Estimator)
    return incremental_instance.train(train_data=train_data, epochs=epochs,
                                      learning_rate=learning_rate,
                                      class_names=class_names)


if __name__ == '__main__':
    main()
