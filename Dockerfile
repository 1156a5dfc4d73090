# The hotswap image: the one binary and the runtimes it loads (ONNX
# Runtime, TensorFlow's C library, CPython 3.11 for Python predictors).
#
# Nothing is compiled here: `make image` (.ci/image) builds the binary on
# the host (release, stripped, by default) and stages it with the libraries
# in a folder that is this build's context:
#   bin/hotswap
#   bin/python3                    (the CPython the binary embeds, for the
#                                   predictors' virtualenv and pip)
#   lib/libonnxruntime.so.*        (PyPI onnxruntime wheel)
#   lib/libtensorflow_cc.so.2, lib/libtensorflow_framework.so.2
#                                  (PyPI tensorflow-cpu wheel; absent from
#                                   the variant without TensorFlow)
#   lib/libpython3.11.so.1.0, lib/python3.11/   (its shared library and
#                                   standard library)
# With a registry the base is the official image; without one, .ci/image
# makes a local image of the same name from Debian's packages.
#
# A predictor's Python packages go into /opt/hotswap/venv, which workers
# import from (HOTSWAP_PYTHON_VENV); docs/operations.md has the recipe:
#   FROM hotswap
#   USER root
#   COPY requirements.txt /tmp/
#   RUN /opt/hotswap/venv/bin/pip install --no-cache-dir -r /tmp/requirements.txt
#   USER hotswap
FROM debian:bookworm-slim

# CA roots for S3 and GCS over TLS; libssl and libffi for CPython's
# hashlib, ssl and ctypes modules; tini, the init process that reaps the
# Python predictor processes and passes signals on (the container's PID 1).
RUN apt-get update \
    && apt-get install -y --no-install-recommends ca-certificates libssl3 libffi8 tini \
    && apt-get clean && rm -rf /var/lib/apt/lists/*

COPY lib/ /usr/local/lib/
COPY bin/ /usr/local/bin/

# The binary finds ONNX Runtime and TensorFlow in ../lib by itself; the
# TensorFlow library is opened under its C API name. ldconfig makes
# libpython loadable from /usr/local/lib, and PYTHONHOME points the
# embedded interpreter at the standard library copied beside it.
RUN if [ -e /usr/local/lib/libtensorflow_cc.so.2 ]; then \
        ln -s libtensorflow_cc.so.2 /usr/local/lib/libtensorflow.so; fi \
    && ldconfig
ENV PYTHONHOME=/usr/local \
    TF_CPP_MIN_LOG_LEVEL=2

# The predictors' virtualenv (empty but for pip), made by the embedded
# Python itself so its packages match the interpreter the workers run.
RUN python3 -m venv /opt/hotswap/venv
ENV HOTSWAP_PYTHON_VENV=/opt/hotswap/venv

# Run as an unprivileged user; model caches go to the writable /var/cache.
RUN useradd --system --uid 10001 --home-dir /var/cache/hotswap --create-home hotswap
USER hotswap
WORKDIR /var/cache/hotswap

ENTRYPOINT ["/usr/bin/tini", "--", "/usr/local/bin/hotswap"]
CMD ["--help"]
