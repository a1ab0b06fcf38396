# Two set-up commands for a fresh machine: `make run` (the app) and `make test` (the tests).
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
# torch first, from the CPU build, so no install pulls CUDA wheels.
TORCH_SPEC ?= torch==2.13.0
TORCH_PIP_ARGS ?= --extra-index-url https://download.pytorch.org/whl/cpu --retries 1
PYTEST_ARGS ?=
ARGS ?=

.PHONY: install run serve test test-all clean

install: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q "$(TORCH_SPEC)" $(TORCH_PIP_ARGS)
	$(BIN)/python -m pip install -q -e ".[cmt,dev]"
	touch $@

run: install  ## install, then start the app on embedded defaults (SQLite, local CMT)
	$(BIN)/attune run $(ARGS)

serve: install  ## the CMT inference service alone
	$(BIN)/cmt serve $(ARGS)

test: install  ## install, then run the test suite (slow tests deselected)
	$(BIN)/python -m pytest $(PYTEST_ARGS)

test-all: install  ## every test, slow ones included
	$(BIN)/python -m pytest -m "" $(PYTEST_ARGS)

clean:
	rm -rf $(VENV) .pytest_cache build *.egg-info
