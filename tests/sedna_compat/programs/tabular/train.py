"""A CSV training program, as Sedna's atcii ``train.py`` is written (on IncrementalLearning)."""
# ruff: noqa: I001 (Sedna's import order, kept on purpose)

import json

from sedna.datasources import CSVDataParse
from sedna.common.config import Context, BaseConfig
from sedna.common.file_ops import FileOps
from sedna.common.log import LOGGER
from sedna.core.incremental_learning import IncrementalLearning

from interface import DATACONF, Estimator, feature_process


def main():
    # load dataset.
    train_dataset_url = BaseConfig.train_dataset_url
    train_data = CSVDataParse(data_type="train", func=feature_process)
    train_data.parse(train_dataset_url, label=DATACONF["LABEL"])
    attribute = json.dumps({"attribute": DATACONF["ATTRIBUTES"]})
    early_stopping_rounds = int(
        Context.get_parameters("early_stopping_rounds", 100)
    )
    metric_name = Context.get_parameters("metric_name", "mlogloss")

    il_job = IncrementalLearning(estimator=Estimator)
    train_experiment = il_job.train(
        train_data=train_data,
        metric_name=metric_name,
        early_stopping_rounds=early_stopping_rounds
    )
    summary = {
        "attribute": json.loads(attribute),
        "columns": list(train_data.x.columns),
        "samples": train_data.num_examples(),
        "labels": sorted(set(train_data.y.tolist())),
    }
    FileOps.dump(summary, FileOps.join_path(BaseConfig.model_url, "summary.json"))
    LOGGER.info(f"trained on {summary['samples']} samples")
    return train_experiment


if __name__ == '__main__':
    print(main())
