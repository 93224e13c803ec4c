# ntkbook: the two commands are `make book` and `make test` (see README.md).
# Each sets itself up on a fresh machine: .venv is created from the lock file.
SHELL := /bin/bash
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
export TF_CPP_MIN_LOG_LEVEL := 3
export PYTHONHASHSEED := 0

.PHONY: help setup book test test-fast run lock clean browser-deps

help:
	@echo "make book   build the whole book (full-mode notebooks) into _build/html"
	@echo "make test   unit tests + every notebook in quick mode + book and browser checks"
	@echo "make run NB=02_hessian_scaling ARGS='-p QUICK False'   run one chapter"

$(STAMP): requirements.lock pyproject.toml
	test -x $(PY) || python3 -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -r requirements.lock
	$(PY) -m pip install --quiet --no-deps -e .
	touch $(STAMP)

setup: $(STAMP)

# The execution cache (jupyter-cache) keys on notebook code only, so it is
# wiped whenever the lock file or the package source changes.
CACHE_DIR := _build/.jupyter_cache
DEPS_HASH = $(shell cat requirements.lock pyproject.toml ntkbook/*.py | sha256sum | cut -c1-16)

book: setup
	@mkdir -p _build
	@if [ "$$(cat $(CACHE_DIR)/.deps-hash 2>/dev/null)" != "$(DEPS_HASH)" ]; then \
	  echo "dependencies or ntkbook changed: clearing the execution cache"; \
	  rm -rf $(CACHE_DIR); mkdir -p $(CACHE_DIR); echo "$(DEPS_HASH)" > $(CACHE_DIR)/.deps-hash; fi
	NTKBOOK_NO_PROGRESS=1 $(VENV)/bin/jupyter-book build . --builder html
	@echo "book built: _build/html/index.html"

test: setup
	$(PY) -m pytest -q tests

test-fast: setup
	$(PY) -m pytest -q tests -m "not notebook and not book and not browser"

run: setup
	$(PY) -m ntkbook run $(NB) $(ARGS)

lock:
	rm -rf /tmp/ntkbook-lock && python3 -m venv /tmp/ntkbook-lock
	/tmp/ntkbook-lock/bin/pip install --quiet ".[book,test]"
	( echo "# Full pinned environment (pip freeze of a working install, Python 3.11, linux x86_64)."; \
	  echo "# Regenerate with \`make lock\` after changing pyproject.toml."; \
	  /tmp/ntkbook-lock/bin/pip freeze --exclude ntkbook ) > requirements.lock

clean:
	rm -rf _build
