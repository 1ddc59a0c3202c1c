# rlviz: two commands on a fresh machine (Python 3.11, pip and venv):
#   make lab    set up .venv if needed, then open the notebooks in JupyterLab
#   make test   set up .venv if needed, then lint, unit tests, every notebook under nbval,
#               and the browser tests when a Chromium is available (required when CI=true)

PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
# Re-install whenever pyproject.toml changes.
STAMP  := $(VENV)/.installed

.PHONY: experiments setup lab test lint unit nbval test-browser test-browser-run browser-if-available browser-deps notebooks bench clean help

help:
	@echo "make lab           open the notebooks in JupyterLab (sets up .venv first)"
	@echo "make test          lint + unit tests + notebooks under nbval + browser tests"
	@echo "make test-browser  the browser tests alone (installs Debian's chromium if missing)"
	@echo "make notebooks     re-execute every notebook in place (the notebook policy)"
	@echo "make bench         print the performance report"
	@echo "make experiments   regenerate the cached multi-seed experiments (data/experiments/)"
	@echo "make lint          ruff on the package, tests and notebooks"

# verl 0.9.1 goes in without its dependencies (they are the GPU/runtime stack: ray[default], wandb,
# tensorboard, vllm, ...); the `verl` extra holds the few that its loss code and config need.
VERL_PIN := verl==0.9.1

$(STAMP): pyproject.toml Makefile
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -e ".[notebooks,test,browser,trl,verl]"
	$(BIN)/python -m pip install --quiet --disable-pip-version-check --no-deps "$(VERL_PIN)"
	@touch $(STAMP)

setup: $(STAMP)

# Localhost only, token authentication left on. Jupyter refuses to run as root unless
# told to (containers and CI machines often are root).
ALLOW_ROOT := $(if $(filter 0,$(shell id -u)),--allow-root)

lab: setup
	$(BIN)/jupyter lab --notebook-dir=notebooks --ServerApp.ip=127.0.0.1 $(ALLOW_ROOT)

lint: setup
	$(BIN)/ruff check rlviz tests benchmarks tools notebooks

# Two workers (the machines here have 2 cores); --dist loadfile keeps each file, and so
# each notebook's kernel, in one worker.
XDIST := -n 2 --dist loadfile

unit: setup
	$(BIN)/python -m pytest tests --ignore=tests/browser -q $(XDIST)

# One kernel at a time: on the CI machines two nbval kernels started by xdist workers at once
# were seen to lose their state between cells (even for a three-cell notebook), and the whole
# collection runs in about three minutes in sequence anyway.
nbval: setup
	$(BIN)/python -m pytest --nbval-lax notebooks -q

test: lint unit nbval
	@$(MAKE) --no-print-directory browser-if-available

# Browser tests: required under CI, otherwise run when a Chromium is there.
browser-if-available: setup
	@if [ "$${CI:-}" = "true" ]; then \
		$(MAKE) --no-print-directory test-browser; \
	elif [ -x /usr/bin/chromium ]; then \
		$(MAKE) --no-print-directory test-browser-run; \
	else \
		echo "SKIPPING the browser tests: no /usr/bin/chromium here (make test-browser installs it)."; \
	fi

browser-deps:
	@if [ ! -x /usr/bin/chromium ]; then \
		if command -v apt-get >/dev/null && grep -qi debian /etc/os-release; then \
			echo "Installing Debian's chromium for the browser tests"; \
			apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null; \
		else \
			echo "The browser tests need Chromium at /usr/bin/chromium (on Debian: apt-get install chromium)."; \
			exit 1; \
		fi; \
	fi

test-browser: setup browser-deps test-browser-run

test-browser-run: setup
	$(BIN)/python -m pytest tests/browser -q

notebooks: setup
	$(BIN)/python tools/nbtool.py execute notebooks/*.ipynb

bench: setup
	$(BIN)/python benchmarks/run_all.py

clean:
	rm -rf $(VENV) artifacts .pytest_cache

# Re-run every experiment of rlviz/experiments/catalog.py into data/experiments/ (minutes of
# CPU: all cores, one torch thread per worker). tests/test_experiment_caches.py re-checks them.
experiments: setup
	$(BIN)/python -m rlviz.experiments.catalog
