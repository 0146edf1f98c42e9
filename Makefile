# The workshop's commands. `make demo` runs every notebook against the embedded local AWS;
# `make test` runs the whole test suite, notebooks included; `make html` runs the notebooks and exports
# them to build/html/ (figures and images inline); `make lab` opens JupyterLab.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
NOTEBOOKS := $(sort $(wildcard [0-9][0-9]_*.ipynb))
# Tests use their own state folder and port, so they never touch a learner's running workshop.
TEST_ENV := WORKSHOP_BACKEND=local WORKSHOP_STATE_DIR=$(CURDIR)/build/test-state WORKSHOP_LOCAL_PORT=4588 \
            WORKSHOP_RESULTS_DIR=$(CURDIR)/build/test-results WORKSHOP_QUICK=1 MPLBACKEND=Agg

.PHONY: install demo html test lint unit notebooks lab bench clean

install: $(VENV)/.installed

# torch's CPU build goes in first (PyPI's Linux torch is a CUDA build of several GB): from the PyTorch CPU
# index where it answers, else from pip's own configuration (find-links, cache), as helpers/bundle.py does
# for the framework bundle. The project's `torch==` pin then finds it installed. The check refuses a venv
# that holds a CUDA build or any nvidia-* package.
TORCH_CPU_INDEX := https://download.pytorch.org/whl/cpu
TORCH_CPU := torch==2.13.0+cpu
REACHABLE := import sys, urllib.request as u; u.urlopen(sys.argv[1], timeout=5)

$(VENV)/.installed: pyproject.toml Makefile
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	@if $(BIN)/python -c '$(REACHABLE)' $(TORCH_CPU_INDEX)/torch/ 2>/dev/null; then \
	  echo "$(TORCH_CPU) from $(TORCH_CPU_INDEX)"; \
	  $(BIN)/pip install --quiet --index-url $(TORCH_CPU_INDEX) --extra-index-url https://pypi.org/simple '$(TORCH_CPU)'; \
	else \
	  echo "$(TORCH_CPU_INDEX) is not reachable: $(TORCH_CPU) from pip's find-links"; \
	  $(BIN)/pip install --quiet '$(TORCH_CPU)'; \
	fi
	$(BIN)/pip install --quiet -e '.[dev]'
	$(BIN)/python -m helpers.install_check
	touch $@

# The runbook starts kernels with matplotlib's inline backend, so the executed copies embed their figures.
demo: install
	WORKSHOP_BACKEND=local $(BIN)/python -m helpers.runbook $(NOTEBOOKS)

html: install
	WORKSHOP_BACKEND=local $(BIN)/python -m helpers.runbook --html build/html $(NOTEBOOKS)

test: install lint unit notebooks

lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

unit: install
	$(TEST_ENV) $(BIN)/pytest tests -q

notebooks: install
	rm -rf build/test-state
	$(TEST_ENV) $(BIN)/pytest --nbval-lax --nbval-current-env -p no:cacheprovider -q $(NOTEBOOKS)

# JupyterLab refuses to run as root without --allow-root (containers, SageMaker terminals).
lab: install
	$(BIN)/jupyter lab $(if $(filter 0,$(shell id -u)),--allow-root,)

bench: install
	@for b in bench/bench_*.py; do echo "== $$b"; $(BIN)/python $$b || exit 1; done

clean:
	-$(BIN)/python -m helpers.local stop
	rm -rf build results .workshop
