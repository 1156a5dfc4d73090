"""Writes the ONNX models the perf_analyzer benchmark serves beside the
iris example (integration-tests/benches/perf_analyzer.rs):

- heavy.onnx: float input "input" [batch, 1024]; output "output", the input
  through 32 MatMul + Relu layers sharing one 1024x1024 weight (4 MB on
  disk), so that one call computes for a millisecond or more;
- deep.onnx: as heavy.onnx with 64 layers, about twice its compute (the
  dynamic batching benchmark, integration-tests/benches/batching.rs);
- big.onnx: float input "input" [batch, 3700]; output "output", one MatMul
  with a 3700x3700 weight: 54.8 MB of weights, for memory per loaded
  version.

usage: make_bench_models.py OUT_DIR   (needs `pip install onnx==1.19.1`)
Prints how long one heavy and one deep call take in ONNX Runtime here (one
thread of calls), so the run shows the models are heavy enough.
"""

import pathlib
import sys
import time

import numpy as np
import onnx
import onnxruntime
from onnx import TensorProto, helper, numpy_helper

LAYERS = 32
WIDTH = 1024
BIG = 3700


def save(model: onnx.ModelProto, path: pathlib.Path) -> None:
    # IR 8 / opset 13: loadable by every ONNX Runtime of the last years.
    model.ir_version = 8
    onnx.checker.check_model(model)
    onnx.save(model, path)
    print(f"wrote {path} ({path.stat().st_size} bytes)")


def heavy(layers: int = LAYERS) -> onnx.ModelProto:
    rng = np.random.default_rng(7)
    # Scaled so that activations neither vanish nor blow up through the layers.
    w = (rng.standard_normal((WIDTH, WIDTH)) / np.sqrt(WIDTH)).astype(np.float32)
    nodes, previous = [], "input"
    for i in range(layers):
        nodes.append(helper.make_node("MatMul", [previous, "w"], [f"m{i}"]))
        out = "output" if i == layers - 1 else f"r{i}"
        nodes.append(helper.make_node("Relu", [f"m{i}"], [out]))
        previous = out
    graph = helper.make_graph(
        nodes,
        "heavy",
        [helper.make_tensor_value_info("input", TensorProto.FLOAT, ["batch", WIDTH])],
        [helper.make_tensor_value_info("output", TensorProto.FLOAT, ["batch", WIDTH])],
        initializer=[numpy_helper.from_array(w, "w")],
    )
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])


def big() -> onnx.ModelProto:
    rng = np.random.default_rng(11)
    w = rng.standard_normal((BIG, BIG), dtype=np.float32) / np.float32(np.sqrt(BIG))
    graph = helper.make_graph(
        [helper.make_node("MatMul", ["input", "w"], ["output"])],
        "big",
        [helper.make_tensor_value_info("input", TensorProto.FLOAT, ["batch", BIG])],
        [helper.make_tensor_value_info("output", TensorProto.FLOAT, ["batch", BIG])],
        initializer=[numpy_helper.from_array(w, "w")],
    )
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])


def main() -> int:
    out = pathlib.Path(sys.argv[1])
    out.mkdir(parents=True, exist_ok=True)
    save(heavy(), out / "heavy.onnx")
    save(heavy(2 * LAYERS), out / "deep.onnx")
    save(big(), out / "big.onnx")
    for name in ("heavy", "deep"):
        session = onnxruntime.InferenceSession(str(out / f"{name}.onnx"))
        x = np.ones((1, WIDTH), dtype=np.float32)
        for _ in range(20):
            session.run(None, {"input": x})
        n = 200
        start = time.perf_counter()
        for _ in range(n):
            session.run(None, {"input": x})
        per_call = (time.perf_counter() - start) / n * 1000
        print(f"{name}: {per_call:.2f} ms per call in ONNX Runtime")
    return 0


if __name__ == "__main__":
    sys.exit(main())
