# The commands the README promises:
#   make demo        set up .venv with the core only, train the round-1 and round-2 presets, write runs/summary.md
#   make test        set up .venv (and Chromium for the browser tests), run every test and notebook
#   make notebooks   the same set-up as make test, then JupyterLab on notebooks/
#
# TORCH_SPEC pins the build this project is tested with. On machines where pip finds the
# CPU wheel locally (as here) it installs in seconds; elsewhere pip fetches it from PyPI.
# Override it for another build, e.g. `make test TORCH_SPEC="torch==2.13.0+cu128"`.
PYTHON ?= python3
VENV ?= .venv
TORCH_SPEC ?= torch==2.13.0
PY := $(VENV)/bin/python
RUNS ?= runs

.PHONY: setup demo notebooks test test-fast browser-deps bench clean

# Everything the tests use: the dev tools and every optional integration they exercise, with
# the pinned torch, in one resolver pass (the constraint keeps Lightning, accelerate and Ray from
# asking for another torch build). pip would write the bytecode of every file it installs, one by
# one (about half of the set-up's CPU time); instead compileall writes it on every core at once,
# skipping the libraries' own test suites, which nothing imports. Bytecode is written here because
# a machine that sets PYTHONDONTWRITEBYTECODE (this one does) would otherwise compile torch,
# Lightning, transformers... again in every process that imports them.
EXTRAS ?= dev,ray,tensorboard,lightning,transformers,keras
NOT_IMPORTED ?= /(tests?|testing/_internal)/

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	echo "$(TORCH_SPEC)" > $(VENV)/torch-constraint.txt
	$(PY) -m pip install --quiet --no-compile -c $(VENV)/torch-constraint.txt "$(TORCH_SPEC)" -e ".[$(EXTRAS)]"
	$(PY) -m compileall -q -j 0 -x '$(NOT_IMPORTED)' $(VENV)/lib
	mkdir -p $(VENV)/share/jupyter/lab/settings/overrides.d && cp notebooks/jupyterlab-settings.json $(VENV)/share/jupyter/lab/settings/overrides.d/nbtrain.json
	touch $@

setup: $(VENV)/.installed

# What the demo needs and nothing more: the pinned torch and nbtrain's core dependencies, in one
# resolver pass. --no-compile: pip would otherwise write bytecode for every file it installs (most
# of them torch's, one by one, over a minute here); Python compiles what the demo imports on first use.
$(VENV)/.installed-core: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	echo "$(TORCH_SPEC)" > $(VENV)/torch-constraint.txt
	$(PY) -m pip install --quiet --no-compile -c $(VENV)/torch-constraint.txt "$(TORCH_SPEC)" -e .
	touch $@

# after the full set-up (make test, make notebooks) the demo uses it; from nothing it installs the core only
demo: $(if $(wildcard $(VENV)/.installed),setup,$(VENV)/.installed-core)
	$(VENV)/bin/nbtrain demo --out $(RUNS)

# the full set-up (as for make test: JupyterLab and the integrations notebook 07 shows), then JupyterLab
notebooks: setup
	$(VENV)/bin/jupyter lab notebooks/

# Debian's Chromium drives the end-to-end tests (Playwright cannot download a browser here).
browser-deps:
	@if [ ! -x /usr/bin/chromium ]; then \
	  if [ "$$(id -u)" = 0 ]; then apt-get update -qq && apt-get install -y -qq chromium >/dev/null; \
	  else echo "note: /usr/bin/chromium missing and not root: browser tests will be skipped"; fi; \
	fi

# PYTEST_ARGS: more pytest options (CI adds --durations=25)
test: setup browser-deps
	$(PY) -m pytest $(PYTEST_ARGS)

test-fast: setup
	$(PY) -m pytest -m "not browser and not slow" tests

bench: setup
	$(PY) benchmarks/bench_trainer.py

clean:
	rm -rf $(VENV) $(RUNS) test-artifacts .pytest_cache
