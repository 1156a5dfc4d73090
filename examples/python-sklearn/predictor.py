import os
import pickle

import numpy as np

LABELS = ["setosa", "versicolor", "virginica"]


class PythonPredictor:
    def __init__(self, config, python_client):
        self.client = python_client

    def load_model(self, model_path):
        with open(os.path.join(model_path, "model.pkl"), "rb") as f:
            return pickle.load(f)

    def predict(self, payload, query_params):
        model = self.client.get_model(model_version=query_params.get("version", "latest"))
        x = np.asarray(payload, dtype=np.float64)
        return {
            "label": [LABELS[i] for i in model.predict(x)],
            "probabilities": model.predict_proba(x),
        }
