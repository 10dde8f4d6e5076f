# The two commands the README promises:
#   make demo   set up .venv, train the round-1 and round-2 presets, write runs/ and runs/summary.md
#   make test   set up .venv (and Chromium for the browser tests), run every test and notebook
#
# TORCH_SPEC pins the build this project is tested with. On machines where pip finds the
# CPU wheel locally (as here) it installs in seconds; elsewhere pip fetches it from PyPI.
# Override it for another build, e.g. `make test TORCH_SPEC="torch==2.13.0+cu128"`.
PYTHON ?= python3
VENV ?= .venv
TORCH_SPEC ?= torch==2.13.0
PY := $(VENV)/bin/python
RUNS ?= runs

.PHONY: setup demo test test-fast browser-deps bench clean

# Everything the tests use: the dev tools and every optional integration they exercise. The
# constraint keeps the extras (Lightning, accelerate, Ray) from replacing the pinned torch build.
EXTRAS ?= dev,ray,tensorboard,lightning,transformers,keras

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet "$(TORCH_SPEC)"
	echo "$(TORCH_SPEC)" > $(VENV)/torch-constraint.txt
	$(PY) -m pip install --quiet -c $(VENV)/torch-constraint.txt -e ".[$(EXTRAS)]"
	touch $@

setup: $(VENV)/.installed

demo: setup
	$(VENV)/bin/nbtrain demo --out $(RUNS)

# Debian's Chromium drives the end-to-end tests (Playwright cannot download a browser here).
browser-deps:
	@if [ ! -x /usr/bin/chromium ]; then \
	  if [ "$$(id -u)" = 0 ]; then apt-get update -qq && apt-get install -y -qq chromium >/dev/null; \
	  else echo "note: /usr/bin/chromium missing and not root: browser tests will be skipped"; fi; \
	fi

test: setup browser-deps
	$(PY) -m pytest

test-fast: setup
	$(PY) -m pytest -m "not browser and not slow" tests

bench: setup
	$(PY) benchmarks/bench_trainer.py

clean:
	rm -rf $(VENV) $(RUNS) test-artifacts .pytest_cache
