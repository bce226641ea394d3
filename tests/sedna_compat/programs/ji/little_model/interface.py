"""The edge Estimator: a numpy stand-in for Sedna's little TF model (``load`` + ``predict``)."""

import os

import numpy as np

os.environ['BACKEND_TYPE'] = 'TENSORFLOW'


class Estimator:
    def __init__(self, **kwargs):
        self.weights = None
        self.bias = None

    def load(self, model_url=""):
        with np.load(model_url, allow_pickle=False) as saved:
            self.weights, self.bias = saved["weights"], saved["bias"]

    def predict(self, data, **kwargs):
        logits = np.asarray(data, dtype=np.float64).reshape(-1, 64) @ self.weights + self.bias
        logits -= logits.max(axis=1, keepdims=True)
        exp = np.exp(logits)
        return (exp / exp.sum(axis=1, keepdims=True))[0].tolist()
