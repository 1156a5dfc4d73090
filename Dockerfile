# The hotswap image: the one binary and the runtimes it loads (ONNX
# Runtime, TensorFlow's C library, CPython 3.11 for Python predictors).
#
# Nothing is compiled here: `make image` (.ci/image) builds the binary on
# the host and stages it with the libraries in a folder that is this
# build's context:
#   bin/hotswap
#   lib/libonnxruntime.so.*        (PyPI onnxruntime wheel)
#   lib/libtensorflow_cc.so.2, lib/libtensorflow_framework.so.2
#                                  (PyPI tensorflow-cpu wheel)
#   lib/libpython3.11.so.1.0, lib/python3.11/   (the CPython it embeds)
# With a registry the base is the official image; without one, .ci/image
# makes a local image of the same name from Debian's packages.
FROM debian:bookworm-slim

# CA roots for S3 and GCS over TLS; libssl and libffi for CPython's
# hashlib, ssl and ctypes modules.
RUN apt-get update \
    && apt-get install -y --no-install-recommends ca-certificates libssl3 libffi8 \
    && rm -rf /var/lib/apt/lists/*

COPY lib/ /usr/local/lib/
COPY bin/hotswap /usr/local/bin/hotswap

# The binary finds ONNX Runtime and TensorFlow in ../lib by itself; the
# TensorFlow library is opened under its C API name. ldconfig makes
# libpython loadable from /usr/local/lib, and PYTHONHOME points the
# embedded interpreter at the standard library copied beside it.
RUN ln -s libtensorflow_cc.so.2 /usr/local/lib/libtensorflow.so && ldconfig
ENV PYTHONHOME=/usr/local \
    TF_CPP_MIN_LOG_LEVEL=2

# Run as an unprivileged user; model caches go to the writable /var/cache.
RUN useradd --system --uid 10001 --home-dir /var/cache/hotswap --create-home hotswap
USER hotswap
WORKDIR /var/cache/hotswap

ENTRYPOINT ["/usr/local/bin/hotswap"]
CMD ["--help"]
