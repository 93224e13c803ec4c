# ntkbook: the two commands are `make book` and `make test` (see README.md).
# Each sets itself up on a fresh machine: .venv is created from the lock file,
# MathJax is fetched from the npm registry (the book renders maths offline) and
# `make test` installs Debian's chromium for the browser test when it is missing.
SHELL := /bin/bash
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
export TF_CPP_MIN_LOG_LEVEL := 3
export PYTHONHASHSEED := 0

# apt-get as root, else through sudo.
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)
APT_INSTALL := $(SUDO) env DEBIAN_FRONTEND=noninteractive apt-get install -y -q

# MathJax 3 (npm package `mathjax`, its es5/ folder), pinned by version and
# tarball hash; Sphinx's mathjax_path points at it (see _config.yml). It lives
# in a static folder of its own (not _static/ at the book root, whose .js files
# Jupyter Book would add to every page) and is gitignored.
MATHJAX_VERSION := 3.2.2
MATHJAX_SHA256 := 1b9c0a1c44df864e915690558e72adb9cc5203360daefd385084ced3b6c64c09
MATHJAX_DIR := book/_static/mathjax
MATHJAX := $(MATHJAX_DIR)/tex-svg.js
CHROMIUM := /usr/bin/chromium

.PHONY: help setup mathjax browser-deps sandbox-deps book test test-fast run assignments grade lock clean

help:
	@echo "make book   build the whole book (full-mode notebooks) into _build/html"
	@echo "make test   unit tests + every notebook in quick mode + book and browser checks"
	@echo "make run NB=02_hessian_scaling ARGS='-p QUICK False'   run one chapter"
	@echo "make assignments   build the student and autograder versions of the assignments"
	@echo "make grade SUBMISSIONS=path/to/folder   grade every notebook in the folder, each in a"
	@echo "           bubblewrap sandbox (it runs students' code: see book/instructors.md) -> scores.csv"

$(STAMP): requirements.lock pyproject.toml
	test -x $(PY) || python3 -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -r requirements.lock
	$(PY) -m pip install --quiet --no-deps -e .
	touch $(STAMP)

setup: $(STAMP)

$(MATHJAX):
	@command -v npm >/dev/null || { $(SUDO) apt-get update -q && $(APT_INSTALL) npm; }
	rm -rf $(MATHJAX_DIR) _build/mathjax-pack && mkdir -p _build/mathjax-pack
	cd _build/mathjax-pack && npm pack --silent mathjax@$(MATHJAX_VERSION) >/dev/null
	echo "$(MATHJAX_SHA256)  _build/mathjax-pack/mathjax-$(MATHJAX_VERSION).tgz" | sha256sum -c --quiet
	tar xzf _build/mathjax-pack/mathjax-$(MATHJAX_VERSION).tgz -C _build/mathjax-pack package/es5
	mkdir -p $(dir $(MATHJAX_DIR)) && mv _build/mathjax-pack/package/es5 $(MATHJAX_DIR)
	rm -rf _build/mathjax-pack
	@test -f $(MATHJAX)

mathjax: $(MATHJAX)

# Headless Chromium for tests/test_browser.py (Playwright drives Debian's
# build: `playwright install` downloads a browser of its own, which fails here).
$(CHROMIUM):
	$(SUDO) apt-get update -q
	$(APT_INSTALL) chromium

browser-deps: $(CHROMIUM)

# bubblewrap: the sandbox every submission is graded in (assignments/sandbox.py);
# tests/test_grading*.py and tests/test_assignments.py grade through it.
BWRAP := /usr/bin/bwrap
$(BWRAP):
	$(SUDO) apt-get update -q
	$(APT_INSTALL) bubblewrap

sandbox-deps: $(BWRAP)

# The execution cache (jupyter-cache) keys on notebook code only, so it is
# wiped whenever the lock file or the package source changes.
CACHE_DIR := _build/.jupyter_cache
DEPS_HASH = $(shell cat requirements.lock pyproject.toml ntkbook/*.py | sha256sum | cut -c1-16)

# -W -n --keep-going: every Sphinx warning (nitpicky) fails the build, after
# reporting all of them. NTKBOOK_NO_PROGRESS silences nk.notebook.progress bars.
book: setup $(MATHJAX)
	@mkdir -p _build
	@if [ "$$(cat $(CACHE_DIR)/.deps-hash 2>/dev/null)" != "$(DEPS_HASH)" ]; then \
	  echo "dependencies or ntkbook changed: clearing the execution cache"; \
	  rm -rf $(CACHE_DIR); mkdir -p $(CACHE_DIR); echo "$(DEPS_HASH)" > $(CACHE_DIR)/.deps-hash; fi
	NTKBOOK_NO_PROGRESS=1 $(VENV)/bin/jupyter-book build . --builder html -W -n --keep-going
	@echo "book built: _build/html/index.html"

test: setup $(MATHJAX) $(CHROMIUM) $(BWRAP)
	$(PY) -m pytest -q tests

test-fast: setup
	$(PY) -m pytest -q tests -m "not notebook and not book and not browser"

run: setup
	$(PY) -m ntkbook run $(NB) $(ARGS)

assignments: setup
	$(PY) assignments/build.py

grade: setup $(BWRAP)
	@test -n "$(SUBMISSIONS)" || { echo "usage: make grade SUBMISSIONS=path/to/folder"; exit 2; }
	$(PY) assignments/grade.py $(SUBMISSIONS)

lock:
	rm -rf /tmp/ntkbook-lock && python3 -m venv /tmp/ntkbook-lock
	/tmp/ntkbook-lock/bin/pip install --quiet ".[book,test]"
	( echo "# Full pinned environment (pip freeze of a working install, Python 3.11, linux x86_64)."; \
	  echo "# Regenerate with \`make lock\` after changing pyproject.toml."; \
	  /tmp/ntkbook-lock/bin/pip freeze --exclude ntkbook ) > requirements.lock

clean:
	rm -rf _build
