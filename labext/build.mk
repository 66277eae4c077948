# JupyterLab front-end extension: labext/ (TypeScript) -> medai_lab/labextension/ (prebuilt,
# federated; the wheel maps it to share/jupyter/labextensions/medai-lab).
# Included from the main Makefile; expects VENV (and uses STAMP when defined).
# Offline after `npm ci`: JupyterLab's core metadata comes from node_modules/@jupyterlab/core-meta
# (pinned in labext/package-lock.json), never from the network; no Python is needed to build.
LABEXT_DIR := labext
LABEXT_OUT := medai_lab/labextension/package.json
# Editable/dev install: the venv's labextensions folder points at the build output.
LABEXT_LINK := $(VENV)/share/jupyter/labextensions/medai-lab
LABEXT_DEPS := $(LABEXT_DIR)/node_modules/.package-lock.json
LABEXT_SRC := $(LABEXT_DIR)/package.json $(LABEXT_DIR)/tsconfig.json $(LABEXT_DIR)/install.json \
  $(shell find $(LABEXT_DIR)/src $(LABEXT_DIR)/style $(LABEXT_DIR)/schema -type f 2>/dev/null)
# The viewer is the local package `medai-viewer` (medai_lab/widgets/js, a `file:` dependency:
# node_modules/medai-viewer links to it); the labextension bundles its dist/index.js (esbuild).
VIEWER_PKG := medai_lab/widgets/js
VIEWER_DEPS := $(VIEWER_PKG)/node_modules/.package-lock.json
VIEWER_DIST := $(VIEWER_PKG)/dist/index.js
VIEWER_SRC := $(VIEWER_PKG)/package.json $(shell find $(VIEWER_PKG)/src -type f 2>/dev/null) \
  medai_lab/widgets/data/presets.json

.PHONY: labext labext-clean lint-ts

# `make labext` (add it to install:): build if stale, then make sure the venv's
# share/jupyter/labextensions/medai-lab is a symlink to the build output. An editable install
# of a pyproject with the shared-data mapping copies a real folder there: it is replaced.
labext: $(LABEXT_OUT) | $(STAMP)
	@mkdir -p $(dir $(LABEXT_LINK))
	@if [ ! -L $(LABEXT_LINK) ]; then rm -rf $(LABEXT_LINK) && \
	  ln -s $(abspath medai_lab/labextension) $(LABEXT_LINK) && echo "linked $(LABEXT_LINK)"; fi

$(LABEXT_DEPS): $(LABEXT_DIR)/package-lock.json
	cd $(LABEXT_DIR) && npm ci --no-audit --no-fund --loglevel=error

$(VIEWER_DEPS): $(VIEWER_PKG)/package-lock.json
	cd $(VIEWER_PKG) && npm ci --no-audit --no-fund --loglevel=error

$(VIEWER_DIST): $(VIEWER_DEPS) $(VIEWER_SRC)
	cd $(VIEWER_PKG) && npm run --silent build:dist

$(LABEXT_OUT): $(LABEXT_DEPS) $(LABEXT_SRC) $(VIEWER_DIST)
	cd $(LABEXT_DIR) && npm run --silent build:prod

# `make lint` (TypeScript half): tsc --noEmit, eslint and prettier --check on both TS trees,
# with the versions pinned in each package.json / package-lock.json.
lint-ts: $(VIEWER_DEPS) $(LABEXT_DEPS)
	cd $(VIEWER_PKG) && npm run --silent lint
	cd $(LABEXT_DIR) && npm run --silent lint

labext-clean:
	rm -rf $(LABEXT_DIR)/node_modules $(LABEXT_DIR)/lib $(LABEXT_DIR)/tsconfig.tsbuildinfo $(VIEWER_PKG)/dist \
	  medai_lab/labextension $(LABEXT_LINK)
