"""Calls a hotswap worker (or anything serving the Open Inference Protocol)
with the unmodified PyPI `tritonclient[grpc]` client, as a Triton user would,
and checks the answers against ONNX Runtime's Python API on the same model
file.

usage: triton_client_check.py HOST:PORT MODEL_NAME VERSION MODEL_FILE [--ca FILE] [--token TOKEN]
--ca: call over TLS, verifying the server against this CA certificate.
--token: send `authorization: Bearer TOKEN` (and first check that a call
without it is refused UNAUTHENTICATED).
Prints "ok" and exits 0 when every check passes.
"""

import argparse
import sys

import numpy as np
import onnxruntime
import tritonclient.grpc as grpcclient
from tritonclient.utils import InferenceServerException


def main() -> int:
    parser = argparse.ArgumentParser()
    for positional in ("url", "name", "version", "model_file"):
        parser.add_argument(positional)
    parser.add_argument("--ca")
    parser.add_argument("--token")
    args = parser.parse_args()
    url, name, version, model_file = args.url, args.name, args.version, args.model_file
    if args.ca:
        client = grpcclient.InferenceServerClient(url, ssl=True, root_certificates=args.ca)
    else:
        client = grpcclient.InferenceServerClient(url)
    h = {}
    if args.token:
        try:
            client.is_server_live()
            raise AssertionError("a call without the bearer token must fail")
        except InferenceServerException as e:
            assert "UNAUTHENTICATED" in str(e.status()), e
        h = {"authorization": f"Bearer {args.token}"}
    assert client.is_server_live(headers=h), "server not live"
    assert client.is_server_ready(headers=h), "server not ready"
    assert client.is_model_ready(name, headers=h), f"{name} not ready"
    server = client.get_server_metadata(headers=h)
    assert server.name == "hotswap", server

    metadata = client.get_model_metadata(name, version, headers=h)
    assert [i.name for i in metadata.inputs] == ["input"], metadata
    assert metadata.inputs[0].datatype == "FP32", metadata
    assert list(metadata.inputs[0].shape) == [-1, 4], metadata
    assert {o.name: o.datatype for o in metadata.outputs} == {
        "probabilities": "FP32",
        "label": "INT64",
    }, metadata
    config = client.get_model_config(name, version, headers=h).config
    assert [i.name for i in config.input] == ["input"], config
    assert list(config.input[0].dims) == [-1, 4], config

    x = np.array([[5.1, 3.5, 1.4, 0.2], [6.0, 2.0, 5.0, 1.5]], dtype=np.float32)
    tensor = grpcclient.InferInput("input", list(x.shape), "FP32")
    tensor.set_data_from_numpy(x)
    outputs = [grpcclient.InferRequestedOutput(n) for n in ("probabilities", "label")]
    result = client.infer(
        name, [tensor], model_version=version, outputs=outputs, request_id="r1", headers=h
    )
    response = result.get_response()
    assert response.model_version == version, response.model_version
    assert response.id == "r1", response.id

    expected = onnxruntime.InferenceSession(model_file).run(None, {"input": x})
    np.testing.assert_allclose(result.as_numpy("probabilities"), expected[0], rtol=1e-6)
    np.testing.assert_array_equal(result.as_numpy("label"), expected[1])

    stats = client.get_inference_statistics(name, version, headers=h).model_stats
    assert len(stats) == 1 and stats[0].inference_count >= 1, stats
    index = client.get_model_repository_index(headers=h)
    assert any(m.name == name and m.version == version and m.state == "READY" for m in index.models), index

    try:
        client.get_model_metadata("no-such-model", headers=h)
        raise AssertionError("an unknown model must fail")
    except InferenceServerException as e:
        assert "NOT_FOUND" in str(e.status()), e
        assert "no-such-model" in e.message(), e.message()
    print("ok")
    return 0


if __name__ == "__main__":
    sys.exit(main())
