# Promoter: `make run` brings everything up, `make test` runs the whole suite.
SHELL := /bin/bash
.DEFAULT_GOAL := help

# The newest Python 3.14/3.13/3.12 that actually runs (pyenv's versions included).
PYTHON ?= $(shell for v in 3.14 3.13 3.12; do \
	for c in python$$v $$(ls -d $$HOME/.pyenv/versions/$$v*/bin/python$$v /root/.pyenv/versions/$$v*/bin/python$$v 2>/dev/null | sort -rV); do \
	  if $$c -c 'import sys; assert sys.version_info >= (3, 12)' >/dev/null 2>&1; then echo $$c; exit 0; fi; \
	done; done)
VENV := .venv
PY := $(VENV)/bin/python
RUN_PACKAGES := docker-registry skopeo
TEST_PACKAGES := $(RUN_PACKAGES) postgresql chromium chromium-driver docker-compose openssl

.PHONY: help run test lint bench clean python system-run system-test

help:
	@echo "make run    start Promoter (registry, worker, web) on http://127.0.0.1:$${PROMOTER_PORT:-8000}"
	@echo "make test   run the whole test suite (real PostgreSQL, registries, skopeo, Chromium)"
	@echo "make lint   ruff"

python:
	@if [ -z "$(PYTHON)" ]; then \
	  echo "Promoter needs Python 3.12 or newer and none was found."; \
	  echo "Install one with:  sudo apt-get install -y python3.13 python3.13-venv   (Debian 13 / Ubuntu 24.04+)"; \
	  echo "or:                pyenv install 3.13"; \
	  exit 1; fi

$(VENV)/.installed: pyproject.toml | python
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e .
	@touch $@

# The test tools (pytest, Playwright, hypothesis, schemathesis, ruff) only for make test.
$(VENV)/.installed-test: $(VENV)/.installed
	$(PY) -m pip install --quiet -e '.[test]'
	@touch $@

# Install missing Debian packages when root, else print the exact command.
define ensure_packages
	@missing=""; for p in $(1); do dpkg -s $$p >/dev/null 2>&1 || missing="$$missing $$p"; done; \
	if [ -n "$$missing" ]; then \
	  if [ "$$(id -u)" = 0 ]; then \
	    echo "Installing:$$missing"; \
	    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing >/dev/null; \
	  else \
	    echo "Missing system packages. Run:  sudo apt-get update && sudo apt-get install -y$$missing"; exit 1; \
	  fi; fi
endef

system-run:
	$(call ensure_packages,$(RUN_PACKAGES))

system-test:
	$(call ensure_packages,$(TEST_PACKAGES))
	@command -v docker >/dev/null 2>&1 || { \
	  if [ "$$(id -u)" = 0 ]; then DEBIAN_FRONTEND=noninteractive apt-get install -y -qq docker.io >/dev/null; \
	  else echo "The tests need the docker CLI. Run:  sudo apt-get install -y docker.io"; exit 1; fi; }
	@command -v npm >/dev/null 2>&1 || { \
	  if [ "$$(id -u)" = 0 ]; then DEBIAN_FRONTEND=noninteractive apt-get install -y -qq npm >/dev/null; \
	  else echo "The tests need npm (for axe-core). Run:  sudo apt-get install -y npm"; exit 1; fi; }

run: $(VENV)/.installed system-run
	$(PY) manage.py collectstatic --noinput -v 0
	exec $(PY) manage.py run_promoter

# One pytest-xdist worker per core, each with its own PostgreSQL and data dir
# (tests/pgplugin.py). PYTEST_ARGS="-n 0 -k …" runs a few tests in one process: workers
# take seconds to start.
test: $(VENV)/.installed-test system-test
	$(PY) -m pytest -n auto $(PYTEST_ARGS)

lint: $(VENV)/.installed-test
	$(VENV)/bin/ruff check .

bench: $(VENV)/.installed-test system-test
	$(PY) bench/promotion.py
	$(PY) bench/load.py

clean:
	rm -rf $(VENV) staticfiles
