# configurable-http-proxy for `medai-lab hub` and tests/hub, pinned in package-lock.json.
# Included by the top-level Makefile: `install` depends on hub-proxy, `clean` on hub-proxy-clean.
HUB_PROXY_DIR := medai_lab/hub/proxy
HUB_PROXY := $(HUB_PROXY_DIR)/node_modules/.bin/configurable-http-proxy

.PHONY: hub-proxy hub-proxy-clean

hub-proxy: $(HUB_PROXY)

$(HUB_PROXY): $(HUB_PROXY_DIR)/package.json $(HUB_PROXY_DIR)/package-lock.json
	cd $(HUB_PROXY_DIR) && npm ci --no-audit --no-fund --loglevel=error
	@touch $@

hub-proxy-clean:
	rm -rf $(HUB_PROXY_DIR)/node_modules
