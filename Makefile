# ntkbook: the two commands are `make book` and `make test` (see README.md).
# Each sets itself up on a fresh machine: .venv is created from the lock file,
# MathJax is fetched from the npm registry (the book renders maths offline) and
# `make test` installs Debian's chromium for the browser test when it is missing.
SHELL := /bin/bash
VENV ?= .venv
PY := $(VENV)/bin/python
UV := $(VENV)/bin/uv
STAMP := $(VENV)/.installed
export TF_CPP_MIN_LOG_LEVEL := 3
export PYTHONHASHSEED := 0

# The interpreter .venv is made from: `make setup PYTHON=python3.12` (a name on
# the PATH or a path). Unset, the newest of python3.13, python3.12, python3.11
# that runs; an existing .venv of a supported version is then kept. Named, a
# .venv of another version is rebuilt with it.
PYTHON ?=
PYTHONS := 3.13 3.12 3.11
# uv (from PyPI, pinned in the lock) installs the lock file exactly: `uv pip
# sync` also removes what the lock no longer lists. --compile-bytecode writes
# every module's .pyc at install (about 25 s): uv does not by default, and where
# PYTHONDONTWRITEBYTECODE is set (as on our CI machines) nothing writes them
# later, so every process would re-parse jax, scipy, matplotlib ... from source
# (2-3 s more per chapter run, per test process, per graded notebook).
UV_VERSION = $(shell sed -n 's/^uv==\([^ ;]*\).*/\1/p' requirements.lock)

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
	@echo "make setup [PYTHON=python3.12] [VENV=dir]   the environment (Python 3.11-3.13) from the lock file"
	@echo "make run NB=02_hessian_scaling ARGS='-p QUICK False'   run one chapter"
	@echo "make lock   re-resolve pyproject.toml into requirements.lock and requirements-reader.lock"
	@echo "make assignments   build the student and autograder versions of the assignments"
	@echo "make grade SUBMISSIONS=path/to/folder   grade every notebook in the folder, each in a"
	@echo "           bubblewrap sandbox (it runs students' code: see book/instructors.md) -> scores.csv"

# setup checks the interpreter (and an existing .venv) before anything is
# installed, then installs when the lock file or pyproject.toml changed.
setup:
	@py="$(PYTHON)"; \
	if [ -z "$$py" ]; then \
	  for c in $(addprefix python,$(PYTHONS)) python3; do \
	    case " $(PYTHONS) " in *" $$($$c -c 'import sys; print("%d.%d" % sys.version_info[:2])' 2>/dev/null) "*) py=$$c; break;; esac; \
	  done; \
	  [ -n "$$py" ] || { echo "setup: no python3.13, python3.12 or python3.11 runs here; install one, or name it: make setup PYTHON=/path/to/python3.12" >&2; exit 1; }; \
	fi; \
	want=$$("$$py" -c 'import sys; print("%d.%d" % sys.version_info[:2])' 2>/dev/null) \
	  || { echo "setup: PYTHON=$$py does not run" >&2; exit 1; }; \
	case " $(PYTHONS) " in *" $$want "*) ;; \
	  *) echo "setup: $$py is Python $$want; ntkbook needs Python 3.11, 3.12 or 3.13 (make setup PYTHON=python3.12)" >&2; exit 1;; esac; \
	if [ -e "$(VENV)" ]; then \
	  have=$$($(PY) -c 'import sys; print("%d.%d" % sys.version_info[:2])' 2>/dev/null); \
	  if [ -z "$$have" ] || ! case " $(PYTHONS) " in *" $$have "*) true;; *) false;; esac \
	     || { [ -n "$(PYTHON)" ] && [ "$$have" != "$$want" ]; }; then \
	    [ -f "$(VENV)/pyvenv.cfg" ] || { echo "setup: $(VENV) exists and is not a virtual environment; move it away" >&2; exit 1; }; \
	    echo "setup: $(VENV) is Python $${have:-(broken)}; rebuilding it with $$py (Python $$want)"; \
	    rm -rf "$(VENV)"; \
	  fi; \
	fi; \
	$(MAKE) --no-print-directory $(STAMP) PYTHON="$$py"

$(STAMP): requirements.lock pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check "uv==$(UV_VERSION)"
	$(UV) pip sync --quiet --python $(PY) --require-hashes --compile-bytecode requirements.lock
	$(UV) pip install --quiet --python $(PY) --no-deps -e .
	@touch $(STAMP)
	@echo "setup: $(VENV) is ready ($$($(PY) --version))"

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

# --durations: the slowest tests are listed at the end of every run (CI logs too).
test: setup $(MATHJAX) $(CHROMIUM) $(BWRAP)
	$(PY) -m pytest -q tests --durations=25

test-fast: setup
	$(PY) -m pytest -q tests -m "not notebook and not book and not browser"

run: setup
	$(PY) -m ntkbook run $(NB) $(ARGS)

assignments: setup
	$(PY) assignments/build.py

grade: setup $(BWRAP)
	@test -n "$(SUBMISSIONS)" || { echo "usage: make grade SUBMISSIONS=path/to/folder"; exit 2; }
	$(PY) assignments/grade.py $(SUBMISSIONS)

# Both lock files are universal (Python 3.11-3.13; Linux, macOS arm64: see
# [tool.uv] in pyproject.toml) with hashes. requirements.lock is everything
# (readers' set + all extras); requirements-reader.lock the readers' set alone,
# at the same versions (Binder and the chapters' Colab cell install it). Pins
# already in the files are kept; `make lock LOCK_FLAGS=--upgrade` moves them.
LOCK_FLAGS ?=
LOCK := pip compile pyproject.toml --universal --generate-hashes --python-version 3.11 \
	--no-annotate --custom-compile-command "make lock" --quiet $(LOCK_FLAGS)
lock: setup
	$(UV) $(LOCK) --all-extras -o requirements.lock
	$(UV) $(LOCK) -c requirements.lock -o requirements-reader.lock

clean:
	rm -rf _build
