"""Interface of the tabular program: a numpy stand-in for Sedna's atcii XGBoost ``Estimator``."""

import numpy as np

DATACONF = {
    "ATTRIBUTES": ["season", "city"],
    "LABEL": "thermal",
}


def feature_process(df):
    if "notes" in df.columns:
        df = df.drop(columns=["notes"])
    df = df.drop(columns=DATACONF["ATTRIBUTES"])
    return df.fillna(0)


class Estimator:
    def __init__(self, **kwargs):
        self.coef = None

    def train(self, train_data, valid_data=None, **kwargs):
        x = np.c_[train_data.x.to_numpy(dtype=float), np.ones(len(train_data.x))]
        y = train_data.y.to_numpy(dtype=float)
        self.coef, *_ = np.linalg.lstsq(x, y, rcond=None)
        predicted = (x @ self.coef > 0.5).astype(int)
        return {"accuracy": float(np.mean(predicted == y))}

    def predict(self, data, **kwargs):
        x = np.c_[np.asarray(data, dtype=float), np.ones(len(data))]
        return (x @ self.coef > 0.5).astype(int)

    def save(self, model_path):
        with open(model_path, "wb") as handle:
            np.savez(handle, coef=self.coef)
        return model_path

    def load(self, model_url):
        with np.load(model_url, allow_pickle=False) as saved:
            self.coef = saved["coef"]
