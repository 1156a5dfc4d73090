"""Writes the iris-like example SavedModels: models/iris/{1,2,3}/.

The same classifier as examples/iris-onnx: softmax(x @ W + b) over 4 float
features -> 3 class probabilities and the winning label, with the weights
held as variables (so each version is a full SavedModel: saved_model.pb and
variables/). Version N favours class N-1 for the same input, which is what
tests and demos need to tell versions apart.

Needs Python TensorFlow (`pip install tensorflow-cpu==2.21.0`); hotswap
itself does not. The signature `serving_default` takes "input" (float32
[batch, 4]) and returns "probabilities" (float32 [batch, 3]) and "label"
(int64 [batch]).
"""

import os
import pathlib
import shutil

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
import tensorflow as tf  # noqa: E402

HERE = pathlib.Path(__file__).parent

# Same weights as examples/iris-onnx/make_models.py.
WEIGHTS = {
    1: [[1.0, 0.0, 0.0], [1.0, 0.0, 0.0], [0.0, 0.1, 0.0], [0.0, 0.0, 0.1]],
    2: [[0.0, 1.0, 0.0], [0.0, 1.0, 0.0], [0.1, 0.0, 0.0], [0.0, 0.0, 0.1]],
    3: [[0.0, 0.0, 1.0], [0.0, 0.0, 1.0], [0.1, 0.0, 0.0], [0.0, 0.1, 0.0]],
}


class Iris(tf.Module):
    def __init__(self, weights):
        super().__init__()
        self.w = tf.Variable(weights, dtype=tf.float32, name="w")
        self.b = tf.Variable([0.0, 0.0, 0.0], dtype=tf.float32, name="b")

    @tf.function(input_signature=[tf.TensorSpec([None, 4], tf.float32, name="input")])
    def serve(self, input):
        probabilities = tf.nn.softmax(tf.matmul(input, self.w) + self.b)
        return {
            "probabilities": probabilities,
            "label": tf.argmax(probabilities, axis=1, output_type=tf.int64),
        }


def save(module: tf.Module, path: pathlib.Path, signatures: dict) -> None:
    shutil.rmtree(path, ignore_errors=True)
    path.parent.mkdir(parents=True, exist_ok=True)
    tf.saved_model.save(module, str(path), signatures=signatures)
    # Only what serving needs: the graph and the variables.
    for extra in ("assets", "fingerprint.pb"):
        target = path / extra
        if target.is_dir():
            shutil.rmtree(target)
        elif target.exists():
            target.unlink()
    size = sum(f.stat().st_size for f in path.rglob("*") if f.is_file())
    print(f"wrote {path} ({size} bytes)")


def main() -> None:
    for version, weights in WEIGHTS.items():
        module = Iris(weights)
        save(module, HERE / "models" / "iris" / str(version), {"serving_default": module.serve})


if __name__ == "__main__":
    main()
