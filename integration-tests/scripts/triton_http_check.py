"""Calls a hotswap server over the Open Inference Protocol's REST binding with
the unmodified PyPI `tritonclient[http]` client, as a Triton user would: the
same checks triton_client_check.py makes over gRPC (answers compared with
ONNX Runtime's Python API on the same model file), JSON and binary tensors,
and bad inputs that must fail with a status and a message naming them.

usage: triton_http_check.py HOST:PORT MODEL_NAME VERSION MODEL_FILE [--token TOKEN]
--token: send `authorization: Bearer TOKEN` (and first check that a call
without it is refused 401).
Prints "ok" and exits 0 when every check passes.
"""

import argparse
import sys

import numpy as np
import onnxruntime
import tritonclient.http as httpclient
from tritonclient.utils import InferenceServerException


def fails(call, status, *words):
    try:
        call()
    except InferenceServerException as e:
        assert str(e.status()) == str(status), (status, e.status(), e.message())
        for word in words:
            assert word in e.message(), (word, e.message())
        return
    raise AssertionError(f"expected a {status} failure naming {words}")


def main() -> int:
    parser = argparse.ArgumentParser()
    for positional in ("url", "name", "version", "model_file"):
        parser.add_argument(positional)
    parser.add_argument("--token")
    args = parser.parse_args()
    url, name, version, model_file = args.url, args.name, args.version, args.model_file
    client = httpclient.InferenceServerClient(url)
    h = {}
    if args.token:
        fails(lambda: client.get_model_metadata(name), 401)
        h = {"authorization": f"Bearer {args.token}"}
    assert client.is_server_live(headers=h), "server not live"
    assert client.is_server_ready(headers=h), "server not ready"
    assert client.is_model_ready(name, headers=h), f"{name} not ready"
    assert client.is_model_ready(name, version, headers=h), f"{name} {version} not ready"
    server = client.get_server_metadata(headers=h)
    assert server["name"] == "hotswap", server

    metadata = client.get_model_metadata(name, version, headers=h)
    assert [i["name"] for i in metadata["inputs"]] == ["input"], metadata
    assert metadata["inputs"][0]["datatype"] == "FP32", metadata
    assert list(metadata["inputs"][0]["shape"]) == [-1, 4], metadata
    assert {o["name"]: o["datatype"] for o in metadata["outputs"]} == {
        "probabilities": "FP32",
        "label": "INT64",
    }, metadata
    config = client.get_model_config(name, version, headers=h)
    assert [i["name"] for i in config["input"]] == ["input"], config
    assert list(config["input"][0]["dims"]) == [-1, 4], config
    assert config["input"][0]["data_type"] == "TYPE_FP32", config

    # infer() writes Inference-Header-Content-Length into the headers dict
    # it is given: each call gets a copy, or the next would carry a stale one.
    def fresh():
        return dict(h)

    x = np.array([[5.1, 3.5, 1.4, 0.2], [6.0, 2.0, 5.0, 1.5]], dtype=np.float32)
    expected = onnxruntime.InferenceSession(model_file).run(None, {"input": x})
    for binary in (True, False):
        tensor = httpclient.InferInput("input", list(x.shape), "FP32")
        tensor.set_data_from_numpy(x, binary_data=binary)
        outputs = [
            httpclient.InferRequestedOutput(n, binary_data=binary)
            for n in ("probabilities", "label")
        ]
        result = client.infer(
            name, [tensor], model_version=version, outputs=outputs, request_id="r1", headers=fresh()
        )
        response = result.get_response()
        assert response["model_version"] == version, response
        assert response["id"] == "r1", response
        np.testing.assert_allclose(result.as_numpy("probabilities"), expected[0], rtol=1e-6)
        np.testing.assert_array_equal(result.as_numpy("label"), expected[1])
    # Without outputs named: every output, in JSON.
    tensor = httpclient.InferInput("input", list(x.shape), "FP32")
    tensor.set_data_from_numpy(x, binary_data=False)
    result = client.infer(name, [tensor], model_version=version, headers=fresh())
    np.testing.assert_array_equal(result.as_numpy("label"), expected[1])

    stats = client.get_inference_statistics(name, version, headers=h)["model_stats"]
    assert len(stats) == 1 and stats[0]["inference_count"] >= 3, stats
    index = client.get_model_repository_index(headers=h)
    assert any(
        m["name"] == name and m["version"] == version and m["state"] == "READY" for m in index
    ), index

    # Bad input: each fails with its status and a message naming the thing.
    fails(lambda: client.get_model_metadata("no-such-model", headers=h), 404, "no-such-model")
    assert not client.is_model_ready("no-such-model", headers=h)
    wrong = httpclient.InferInput("input", [2, 3], "FP32")
    wrong.set_data_from_numpy(np.zeros((2, 3), dtype=np.float32))
    fails(lambda: client.infer(name, [wrong], headers=fresh()), 400, "input")
    typed = httpclient.InferInput("input", [1, 4], "INT32")
    typed.set_data_from_numpy(np.zeros((1, 4), dtype=np.int32))
    fails(lambda: client.infer(name, [typed], headers=fresh()), 400, "input")
    unknown = httpclient.InferInput("nope", [1, 4], "FP32")
    unknown.set_data_from_numpy(np.zeros((1, 4), dtype=np.float32))
    fails(lambda: client.infer(name, [unknown], headers=fresh()), 400, "nope")
    fails(
        lambda: client.infer(name, [tensor], outputs=[httpclient.InferRequestedOutput("nah")], headers=fresh()),
        400,
        "nah",
    )
    fails(lambda: client.infer(name, [tensor], model_version="999", headers=fresh()), 404, "999")
    print("ok")
    return 0


if __name__ == "__main__":
    sys.exit(main())
