# The README's two commands. Each installs what it needs first (idempotent).
#   make up    run hotswap (model-store + one worker) on the example bucket,
#              a local folder
#   make test  run every test (storage emulators and the compose stack
#              included)
# And: make image, the container image docker-compose.yml runs.

CONFIG ?= examples/iris-onnx/hotswap.yaml
LISTEN ?= 127.0.0.1:7000
# More flags for hotswap up, e.g. ARGS="--python-venv .venv".
ARGS ?=
# TensorFlow SavedModels are served with this cargo feature on; the setup
# installs the library it loads at run time.
FEATURES ?= --features tensorflow

.PHONY: up test setup image bench-perf

setup:
	@.ci/setup

# The worker loads ONNX Runtime from the virtualenv the setup makes.
up: setup
	cargo run $(FEATURES) --bin hotswap -- up $(CONFIG) --listen $(LISTEN) $(ARGS)

# The hotswap image: base image made locally when missing, binary built on
# the host (release and stripped; PROFILE=debug for the tests' build;
# TENSORFLOW=0 for the variant without TensorFlow, hotswap:no-tensorflow).
image:
	@.ci/image

# The integration tests start the hotswap binary, and the compose test the
# image, so both are built first. The image holds the debug binary the
# tests build anyway: a release build would double CI's compile time.
test: setup
	cargo build $(FEATURES) --bin hotswap
	PROFILE=debug .ci/image
	cargo nextest run --workspace $(FEATURES)

# The front door measured with NVIDIA's perf_analyzer (BENCHMARKS.md): the
# model script's onnx package and matplotlib for the chart it draws
# (docs/bench-perf.svg), a release build, then the benchmark.
VENV ?= $(or $(HOTSWAP_VENV),.venv)
bench-perf: setup
	$(VENV)/bin/python -m pip install --quiet --disable-pip-version-check onnx==1.19.1 matplotlib==3.11.2
	cargo build --release $(FEATURES) --bin hotswap
	cargo bench -p hotswap-integration-tests --bench perf_analyzer
