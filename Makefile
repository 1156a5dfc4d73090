# The README's two commands. Each installs what it needs first (idempotent).
#   make up    run hotswap (model-store + one worker) on the example bucket,
#              a local folder
#   make test  run every test (storage emulators included)

CONFIG ?= examples/iris-onnx/hotswap.yaml
LISTEN ?= 127.0.0.1:7000
# More flags for hotswap up, e.g. ARGS="--python-venv .venv".
ARGS ?=
# TensorFlow SavedModels are served with this cargo feature on; the setup
# installs and configures the libraries it links.
FEATURES ?= --features tensorflow

.PHONY: up test setup

setup:
	@.ci/setup

# The worker loads ONNX Runtime from the virtualenv the setup makes.
up: setup
	cargo run $(FEATURES) --bin hotswap -- up $(CONFIG) --listen $(LISTEN) $(ARGS)

# The integration tests start the hotswap binary, so it is built first.
test: setup
	cargo build $(FEATURES) --bin hotswap
	cargo nextest run --workspace $(FEATURES)
