"""A gRPC client that knows every control-plane replica: the unmodified
`tritonclient[grpc]` over one channel to a list of addresses, with gRPC's
own round_robin load balancing and a retry policy for UNAVAILABLE (the
service config any gRPC client can be given). Threads call ModelInfer
without pause until STOP_FILE exists (or MAX_SECONDS pass), then it prints
one JSON line: {"ok": N, "failed": N, "errors": [first few]}.

usage: round_robin_load.py HOST:PORT,HOST:PORT MODEL STOP_FILE [--threads N] [--max-seconds S]
Prints "started" on its own line once a first call succeeded.
"""

import argparse
import json
import os
import sys
import threading
import time

import numpy as np
import tritonclient.grpc as grpcclient
from tritonclient.utils import InferenceServerException

# A call whose replica went away before answering is tried again on another
# (up to 5 attempts in all); a call that got an answer never is.
SERVICE_CONFIG = {
    "loadBalancingConfig": [{"round_robin": {}}],
    "methodConfig": [
        {
            "name": [{"service": "inference.GRPCInferenceService"}],
            "retryPolicy": {
                "maxAttempts": 5,
                "initialBackoff": "0.05s",
                "maxBackoff": "0.5s",
                "backoffMultiplier": 2,
                "retryableStatusCodes": ["UNAVAILABLE"],
            },
        }
    ],
}


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("targets")
    parser.add_argument("model")
    parser.add_argument("stop_file")
    parser.add_argument("--threads", type=int, default=4)
    parser.add_argument("--max-seconds", type=float, default=120)
    args = parser.parse_args()
    client = grpcclient.InferenceServerClient(
        "ipv4:" + args.targets,
        channel_args=[
            ("grpc.service_config", json.dumps(SERVICE_CONFIG)),
            ("grpc.enable_retries", 1),
            # gRPC would send the address list itself as :authority, which
            # no HTTP/2 server takes as a host; a DNS name (dns:///NAME:PORT,
            # as in Kubernetes) needs no such line.
            ("grpc.default_authority", "hotswap"),
        ],
    )
    x = np.array([[5.1, 3.5, 1.4, 0.2]], dtype=np.float32)
    deadline = time.monotonic() + args.max_seconds
    lock = threading.Lock()
    counts = {"ok": 0, "failed": 0, "errors": []}
    started = threading.Event()

    def call() -> None:
        while not os.path.exists(args.stop_file) and time.monotonic() < deadline:
            inputs = [grpcclient.InferInput("input", list(x.shape), "FP32")]
            inputs[0].set_data_from_numpy(x)
            try:
                client.infer(args.model, inputs, client_timeout=30)
                with lock:
                    counts["ok"] += 1
                    if not started.is_set():
                        started.set()
                        print("started", flush=True)
            except InferenceServerException as e:
                with lock:
                    counts["failed"] += 1
                    if len(counts["errors"]) < 5:
                        counts["errors"].append(f"{e.status()}: {e.message()}")

    threads = [threading.Thread(target=call) for _ in range(args.threads)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    client.close()
    print(json.dumps(counts), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
