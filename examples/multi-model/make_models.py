"""Writes the multi-model example's bucket: models/{sepal,petal,mixed}/1/model.onnx.

Three iris-like classifiers (4 float features in `input`, [batch, 4];
`probabilities` [batch, 3] and `label` int64 [batch] out), each looking at
different features, so the same input gets a different answer from each
model: for [[5.1, 3.5, 1.4, 0.2]], sepal says 0, petal says 2, mixed says 1.
Needs only `pip install onnx==1.19.1`.
"""

import pathlib

import onnx
from onnx import TensorProto, helper

HERE = pathlib.Path(__file__).parent

# 4 features (sepal length/width, petal length/width) -> 3 classes.
WEIGHTS = {
    "sepal": [[1.0, 0.0, 0.0], [1.0, 0.0, 0.0], [0.0, 0.0, 0.0], [0.0, 0.0, 0.0]],
    "petal": [[0.0, 0.0, 0.0], [0.0, 0.0, 0.0], [0.0, 0.0, 5.0], [0.0, 0.0, 5.0]],
    "mixed": [[0.0, 1.0, 0.0], [0.0, 1.0, 0.0], [0.0, 0.0, 0.0], [0.0, 0.0, 0.0]],
}


def model(name: str) -> onnx.ModelProto:
    w = helper.make_tensor("W", TensorProto.FLOAT, [4, 3], [v for row in WEIGHTS[name] for v in row])
    b = helper.make_tensor("B", TensorProto.FLOAT, [3], [0.0, 0.0, 0.0])
    graph = helper.make_graph(
        [
            helper.make_node("Gemm", ["input", "W", "B"], ["logits"]),
            helper.make_node("Softmax", ["logits"], ["probabilities"], axis=1),
            helper.make_node("ArgMax", ["probabilities"], ["label"], axis=1, keepdims=0),
        ],
        name,
        [helper.make_tensor_value_info("input", TensorProto.FLOAT, ["batch", 4])],
        [
            helper.make_tensor_value_info("probabilities", TensorProto.FLOAT, ["batch", 3]),
            helper.make_tensor_value_info("label", TensorProto.INT64, ["batch"]),
        ],
        initializer=[w, b],
    )
    m = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    m.ir_version = 8
    onnx.checker.check_model(m)
    return m


def main() -> None:
    for name in WEIGHTS:
        path = HERE / "models" / name / "1" / "model.onnx"
        path.parent.mkdir(parents=True, exist_ok=True)
        onnx.save(model(name), path)
        print(f"wrote {path.relative_to(HERE)} ({path.stat().st_size} bytes)")


if __name__ == "__main__":
    main()
