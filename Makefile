# Two set-up commands for a fresh machine: `make run` (the app) and `make test` (the tests).
# `make run` installs what the app runs and nothing else; `make test` adds the test tools.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
# torch first, from the CPU build, so no install pulls CUDA wheels. No bytecode compiled ahead
# (--no-compile, as uv does by default): Python writes it for the modules it imports;
# compiling all of torch and its dependencies ahead cost 0.13 GB and minutes on a busy machine.
TORCH_SPEC ?= torch==2.13.0
TORCH_PIP_ARGS ?= --extra-index-url https://download.pytorch.org/whl/cpu --retries 1
# The rest through uv, which can leave out a dependency (deploy/no-triton.txt: openai-whisper's
# triton, CUDA only) where pip cannot. uv reads UV_INDEX_URL / UV_DEFAULT_INDEX, not pip's config.
UV_PIP_ARGS ?=
UV_INSTALL = $(BIN)/uv pip install --quiet --python $(BIN)/python --overrides deploy/no-triton.txt $(UV_PIP_ARGS)
PYTEST_ARGS ?=
ARGS ?=

.PHONY: install install-test run serve test test-all test-container clean

install: $(VENV)/.installed-run

install-test: $(VENV)/.installed-test

$(VENV)/.installed-run: pyproject.toml setup.py deploy/no-triton.txt
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --no-compile "$(TORCH_SPEC)" $(TORCH_PIP_ARGS)
	$(BIN)/python -m pip install -q --no-compile uv
	$(UV_INSTALL) -e ".[cmt]"
	touch $@

$(VENV)/.installed-test: $(VENV)/.installed-run
	$(UV_INSTALL) -e ".[cmt,dev]"
	touch $@

run: install  ## install, then start the app on embedded defaults (SQLite, local CMT)
	$(BIN)/attune run $(ARGS)

serve: install  ## the CMT inference service alone
	$(BIN)/cmt serve $(ARGS)

test: install-test  ## install with the test tools, then run the test suite (slow tests deselected)
	$(BIN)/python -m pytest $(PYTEST_ARGS)

test-all: install-test  ## every test but the container test, slow ones included
	$(BIN)/python -m pytest -m "not container" $(PYTEST_ARGS)

test-container: install-test  ## build the service image and run it in Docker (needs a Docker engine)
	$(BIN)/python -m pytest -m container tests/test_container.py -rs -s $(PYTEST_ARGS)

clean:
	rm -rf $(VENV) .pytest_cache build *.egg-info
