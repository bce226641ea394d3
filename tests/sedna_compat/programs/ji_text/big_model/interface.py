"""The big language model: a stand-in for Sedna's LLM estimator (``load`` + ``predict`` on a list of texts).

It answers from a knowledge file (JSON: question -> answer) loaded from ``MODEL_URL``;
``predict`` takes Sedna's ``[text]`` and returns ``[answer]``, as the original's LLM does.
"""

import json
import logging
import os

LOG = logging.getLogger(__name__)


class Estimator:

    def __init__(self, **kwargs):
        self.model_name = kwargs.get('model_name', os.environ.get('MODEL_NAME', 'big-answerer'))
        self.knowledge = None

    def load(self, model_url: str = "") -> None:
        model_path = model_url if model_url else os.environ.get("MODEL_URL")
        with open(model_path, encoding="utf-8") as fin:
            self.knowledge = json.load(fin)
        LOG.info(f"big model loaded: {len(self.knowledge)} answers")

    def predict(self, data, **kwargs):
        if self.knowledge is None:
            raise RuntimeError("Model must be loaded before prediction")
        text = data[0] if isinstance(data, (list, tuple)) else data
        return [f"cloud: {self.knowledge.get(text.strip().lower(), 'I do not know')}"]
