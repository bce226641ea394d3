# The Estimator of Sedna's surface-defect example with the Keras CNN swapped for a numpy
# softmax regression: the same methods and arguments (train/get_weights/set_weights/predict/
# evaluate/load/save), so the glue code around it is Sedna's.
import os

import numpy as np

os.environ['BACKEND_TYPE'] = 'KERAS'


def _stack(values):
    return np.stack([np.asarray(v, dtype=np.float64) for v in values])


class Estimator:
    def __init__(self, **kwargs):
        """Model init"""

        self.model = self.build()
        self.has_init = False

    @staticmethod
    def build():
        return [np.zeros((64, 10)), np.zeros(10)]

    def _proba(self, x):
        logits = (x / 16.0) @ self.model[0] + self.model[1]
        logits -= logits.max(axis=1, keepdims=True)
        e = np.exp(logits)
        return e / e.sum(axis=1, keepdims=True)

    def train(self,
              train_data, valid_data=None,
              epochs=1,
              batch_size=1,
              learning_rate=0.01,
              validation_split=0.2):
        """ Model train """

        x, y = _stack(train_data.x), _stack(train_data.y)
        losses = []
        for _ in range(int(epochs)):
            for start in range(0, len(x), int(batch_size)):
                xb, yb = x[start:start + int(batch_size)], y[start:start + int(batch_size)]
                grad = self._proba(xb) - yb
                self.model[0] -= float(learning_rate) * (xb / 16.0).T @ grad / len(xb)
                self.model[1] -= float(learning_rate) * grad.mean(axis=0)
            losses.append(float(-np.log((self._proba(x) * y).sum(axis=1) + 1e-12).mean()))
        return {"loss": losses}

    def get_weights(self):
        return [w.copy() for w in self.model]

    def set_weights(self, weights):
        self.model = [np.array(w, dtype=np.float64) for w in weights]

    def load_weights(self, model):
        if not os.path.isfile(model):
            return
        with np.load(model) as saved:
            self.model = [saved["w"], saved["b"]]

    def predict(self, datas):
        return self._proba(_stack(datas))

    def evaluate(self, test_data, **kwargs):
        pass

    def load(self, model_url):
        return self.load_weights(model_url)

    def save(self, model_path=None):
        """
        save the model as a single npz file
        """
        np.savez(model_path, w=self.model[0], b=self.model[1])
