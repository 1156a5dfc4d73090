"""Writes the iris-like example models: models/iris/{1,2,3}/model.onnx.

Each version is softmax(x @ W + b) over 4 float features -> 3 class
probabilities, with weights chosen so the versions answer differently
(version N favours class N-1 for the same input), which is what tests and
demos need to tell versions apart. Needs only `pip install onnx==1.19.1`.
"""

import pathlib

import onnx
from onnx import TensorProto, helper

HERE = pathlib.Path(__file__).parent

# One weight matrix per version: 4 features (sepal length/width, petal
# length/width) -> 3 classes.
WEIGHTS = {
    1: [[1.0, 0.0, 0.0], [1.0, 0.0, 0.0], [0.0, 0.1, 0.0], [0.0, 0.0, 0.1]],
    2: [[0.0, 1.0, 0.0], [0.0, 1.0, 0.0], [0.1, 0.0, 0.0], [0.0, 0.0, 0.1]],
    3: [[0.0, 0.0, 1.0], [0.0, 0.0, 1.0], [0.1, 0.0, 0.0], [0.0, 0.1, 0.0]],
}


def iris(version: int) -> onnx.ModelProto:
    w = helper.make_tensor(
        "W", TensorProto.FLOAT, [4, 3], [v for row in WEIGHTS[version] for v in row]
    )
    b = helper.make_tensor("B", TensorProto.FLOAT, [3], [0.0, 0.0, 0.0])
    nodes = [
        helper.make_node("Gemm", ["input", "W", "B"], ["logits"]),
        helper.make_node("Softmax", ["logits"], ["probabilities"], axis=1),
        helper.make_node("ArgMax", ["probabilities"], ["label"], axis=1, keepdims=0),
    ]
    graph = helper.make_graph(
        nodes,
        f"iris_v{version}",
        [helper.make_tensor_value_info("input", TensorProto.FLOAT, ["batch", 4])],
        [
            helper.make_tensor_value_info("probabilities", TensorProto.FLOAT, ["batch", 3]),
            helper.make_tensor_value_info("label", TensorProto.INT64, ["batch"]),
        ],
        initializer=[w, b],
    )
    model = helper.make_model(
        graph, opset_imports=[helper.make_opsetid("", 13)], producer_name="hotswap-examples"
    )
    # IR 8 / opset 13: loadable by every ONNX Runtime of the last years.
    model.ir_version = 8
    onnx.checker.check_model(model)
    return model


def main() -> None:
    for version in WEIGHTS:
        path = HERE / "models" / "iris" / str(version) / "model.onnx"
        path.parent.mkdir(parents=True, exist_ok=True)
        onnx.save(iris(version), path)
        print(f"wrote {path.relative_to(HERE)} ({path.stat().st_size} bytes)")


if __name__ == "__main__":
    main()
