"""The Estimator of the incremental-learning programs: a numpy stand-in for Sedna's TF YOLOv3.

Same methods as Sedna's helmet-detection ``interface.py``: ``train``, ``evaluate`` (which,
like the original, opens the model it is given with ``model_path``), ``predict``, ``load``
and ``save``. The model is a softmax regression over 8x8 digit images.
"""

import os

import numpy as np

os.environ['BACKEND_TYPE'] = 'TENSORFLOW'

NUM_CLASSES = 10


class Estimator:
    def __init__(self, **kwargs):
        self.weights = np.zeros((64, NUM_CLASSES))
        self.bias = np.zeros(NUM_CLASSES)

    def _proba(self, x):
        logits = np.asarray(x, dtype=np.float64).reshape(-1, 64) @ self.weights + self.bias
        logits -= logits.max(axis=1, keepdims=True)
        exp = np.exp(logits)
        return exp / exp.sum(axis=1, keepdims=True)

    def train(self, train_data, valid_data=None, **kwargs):
        epochs = int(kwargs.get("epochs", 1))
        learning_rate = float(kwargs.get("learning_rate", 0.5))
        x = np.asarray(train_data.x, dtype=np.float64).reshape(-1, 64)
        y = np.eye(NUM_CLASSES)[np.asarray(train_data.y, dtype=int)]
        for _ in range(epochs):
            grad = self._proba(x) - y
            self.weights -= learning_rate * x.T @ grad / len(x)
            self.bias -= learning_rate * grad.mean(axis=0)
        return {"loss": float(-np.mean(np.sum(y * np.log(self._proba(x) + 1e-12), axis=1)))}

    def evaluate(self, valid_data, model_path=None, class_names=None, **kwargs):
        if model_path:
            self.load(model_path)
        x, y = [], []
        for line in valid_data.x:  # use_raw lines: "<root>/<image>,<label>"
            path, label = line.split(",")
            x.append(np.load(path).ravel() / 16.0)
            y.append(int(label))
        predicted = self._proba(np.array(x)).argmax(axis=1)
        y = np.array(y)
        precision, recall = [], []
        for klass in range(NUM_CLASSES):
            chosen, actual = predicted == klass, y == klass
            hit = float(np.sum(chosen & actual))
            precision.append(hit / max(1.0, float(chosen.sum())))
            recall.append(hit / max(1.0, float(actual.sum())))
        return {"precision": precision, "recall": recall, "accuracy": float(np.mean(predicted == y))}

    def predict(self, data, **kwargs):
        return self._proba(data)

    def load(self, model_url):
        with np.load(model_url, allow_pickle=False) as saved:
            self.weights, self.bias = saved["weights"], saved["bias"]

    def save(self, model_path):
        os.makedirs(os.path.dirname(model_path) or ".", exist_ok=True)
        with open(model_path, "wb") as handle:
            np.savez(handle, weights=self.weights, bias=self.bias)
        return model_path
