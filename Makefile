# MedAI Lab: `make demo` runs the main job, `make test` the test suite. Both install first.
SHELL := /bin/bash
# The locks are resolved for Python 3.11: use it when the machine has one that runs.
PYTHON ?= $(if $(shell python3.11 -c '' 2>/dev/null && echo y),python3.11,python3)
VENV ?= .venv
UV_VERSION ?= 0.13.8
# auto: the CUDA lock when `nvidia-smi -L` lists a GPU, else the CPU lock (cpu / cuda to force).
TORCH ?= auto
LOCKS := environments/requirements-cpu.lock environments/requirements-cuda.lock
# A local folder of wheels (this build farm keeps the CPU torch wheel there); empty elsewhere,
# and then torch==X+cpu comes from the PyTorch CPU index.
FIND_LINKS ?= $(wildcard /opt/wheels)
UV := $(VENV)/bin/uv
PY := $(VENV)/bin/python
UV_FLAGS := --python $(PY) $(if $(FIND_LINKS),--find-links $(FIND_LINKS))
STAMP := $(VENV)/.medai-installed
# `uv pip` arguments for the lock and torch build of this machine (expanded only when syncing).
LOCK_ARGS = $(shell environments/select_lock.sh --torch '$(TORCH)' --find-links '$(FIND_LINKS)' --venv '$(VENV)')

.PHONY: install python-env demo demo-full doctor gpu-check test lint typecheck format bench lock clean

# The notebook viewer's ES module, bundled from TypeScript with npm + esbuild (offline at run time).
WIDGET_DIR := medai_lab/widgets/js
WIDGET_JS := medai_lab/widgets/static/viewer.js

install: $(STAMP) $(WIDGET_JS) labext hub-proxy

# The JupyterLab extension (labext/ -> medai_lab/labextension/, linked into the venv).
include labext/build.mk

# configurable-http-proxy for `medai-lab hub` (medai_lab/hub/proxy, pinned npm package).
include medai_lab/hub/proxy/build.mk

$(WIDGET_JS): $(WIDGET_DIR)/package-lock.json medai_lab/widgets/data/presets.json $(shell find $(WIDGET_DIR)/src -type f 2>/dev/null)
	cd $(WIDGET_DIR) && npm ci --no-audit --no-fund --loglevel=error && npm run build

# The Python environment alone (no npm builds).
python-env: $(STAMP)

# Re-sync only when a lock or the package metadata changed: a second `make install` is instant.
$(STAMP): $(LOCKS) pyproject.toml
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	@test -x $(UV) || $(PY) -m pip install --quiet --disable-pip-version-check uv==$(UV_VERSION)
	$(UV) pip $(LOCK_ARGS)
	$(UV) pip install $(UV_FLAGS) --no-deps --no-build-isolation -e .
	@touch $(STAMP)

# The whole path with one template trained briefly (about 3 minutes on 2 cores).
demo: install
	$(VENV)/bin/medai-lab demo

# All three templates at the cpu preset; says up front how long that takes on this machine.
demo-full: install
	$(VENV)/bin/medai-lab demo --full

doctor: install
	$(VENV)/bin/medai-lab doctor

# GPU paths on real hardware (<= 8 min on one H100); CPU mode at tiny sizes elsewhere.
gpu-check: install
	$(PY) benchmarks/gpu_check.py --json gpu_check.json

test: install
	$(PY) -m pytest $(PYTEST_ARGS)

# Style: ruff lint rules and formatting (check only; `make format` fixes); the TypeScript trees
# (tsc, eslint, prettier) through lint-ts in labext/build.mk.
lint: python-env lint-ts
	$(VENV)/bin/ruff check medai_lab tests benchmarks
	$(VENV)/bin/ruff format --check medai_lab tests benchmarks

# Types: mypy on medai_lab/ (settings and per-module relaxations in mypy.ini).
typecheck: python-env
	$(VENV)/bin/mypy --config-file mypy.ini

format: install
	$(VENV)/bin/ruff format medai_lab tests benchmarks
	$(VENV)/bin/ruff check --fix medai_lab tests benchmarks

bench: install
	@for b in benchmarks/bench_*.py; do echo "== $$b"; $(PY) $$b || exit 1; done

# Re-resolve both locks (same versions; CPU torch for CI/laptops/Binder, CUDA torch for GPU hubs).
lock: install
	$(UV) pip compile pyproject.toml --extra dev --python-version 3.11 \
	  --python-platform x86_64-manylinux_2_28 \
	  $(if $(FIND_LINKS),--find-links $(FIND_LINKS),--torch-backend cpu) \
	  -o environments/requirements-cpu.lock
	$(UV) pip compile pyproject.toml --extra dev --python-version 3.11 \
	  --python-platform x86_64-manylinux_2_28 -o environments/requirements-cuda.lock

clean: labext-clean hub-proxy-clean
	rm -rf $(VENV) .pytest_cache build dist $(WIDGET_DIR)/node_modules $(WIDGET_JS)
