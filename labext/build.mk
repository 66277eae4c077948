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
  $(shell find $(LABEXT_DIR)/src $(LABEXT_DIR)/style $(LABEXT_DIR)/schema -type f 2>/dev/null) \
  $(shell find medai_lab/widgets/js/src -type f 2>/dev/null) medai_lab/widgets/data/presets.json

.PHONY: labext labext-clean

# `make labext` (add it to install:): build if stale, then make sure the venv's
# share/jupyter/labextensions/medai-lab is a symlink to the build output. An editable install
# of a pyproject with the shared-data mapping copies a real folder there: it is replaced.
labext: $(LABEXT_OUT) | $(STAMP)
	@mkdir -p $(dir $(LABEXT_LINK))
	@if [ ! -L $(LABEXT_LINK) ]; then rm -rf $(LABEXT_LINK) && \
	  ln -s $(abspath medai_lab/labextension) $(LABEXT_LINK) && echo "linked $(LABEXT_LINK)"; fi

$(LABEXT_DEPS): $(LABEXT_DIR)/package-lock.json
	cd $(LABEXT_DIR) && npm ci --no-audit --no-fund --loglevel=error

$(LABEXT_OUT): $(LABEXT_DEPS) $(LABEXT_SRC)
	cd $(LABEXT_DIR) && npm run --silent build:prod

labext-clean:
	rm -rf $(LABEXT_DIR)/node_modules $(LABEXT_DIR)/lib $(LABEXT_DIR)/tsconfig.tsbuildinfo \
	  medai_lab/labextension $(LABEXT_LINK)
