"""The small language model on the edge: a stand-in for Sedna's distilgpt2 estimator.

It knows a few short answers (JSON loaded from ``MODEL_URL``) and otherwise echoes the question.
"""

import json
import logging
import os

LOG = logging.getLogger(__name__)


class Estimator:
    def __init__(self, **kwargs):
        self.model_name = kwargs.get('model_name', 'small-answerer')
        self.answers = None

    def load(self, model_path=""):
        if not model_path:
            model_path = os.environ.get("MODEL_URL")
        with open(model_path, encoding="utf-8") as fin:
            self.answers = json.load(fin)
        LOG.info("Model loaded successfully.")

    def predict(self, data, **kwargs):
        text = data[0] if isinstance(data, (list, tuple)) else data
        return f"edge: {self.answers.get(text.strip().lower(), text)}"
