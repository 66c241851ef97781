# The two commands of the README: `make demo` and `make test`. Everything else helps them.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-stamp

.PHONY: install demo serve test check bench clean

# torch first, from the pinned CPU wheel: a bare `torch` requirement would pull a CUDA build.
# The example plug-in (examples/plugin) is installed too: the tests tune it; and the tests'
# own tasks that misbehave as users' do (tests/plugin).
$(STAMP): pyproject.toml examples/plugin/pyproject.toml tests/plugin/pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet torch==2.13.0
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	$(BIN)/python -m pip install --quiet -e examples/plugin
	$(BIN)/python -m pip install --quiet -e tests/plugin
	# openapi-python-client pins an older typer than our CLI needs: it gets a venv of its own
	# (tests/api/test_generated_client.py generates a client from the live document with it).
	$(PYTHON) -m venv $(VENV)/tools
	$(VENV)/tools/bin/python -m pip install --quiet openapi-python-client==0.29.1
	touch $(STAMP)

install: $(STAMP)

# `make demo PORT=8001` (or HPO_PORT=8001 in the environment): the port the server binds and
# the one later `hpo` commands find it on.
demo: install  ## start the service on SQLite + a local Ray, run examples/digits.yaml over HTTP
	$(if $(PORT),HPO_PORT=$(PORT) )$(BIN)/hpo demo examples/digits.yaml

serve: install  ## keep the service running on http://127.0.0.1:8000 (PORT=... for another)
	$(if $(PORT),HPO_PORT=$(PORT) )$(BIN)/hpo serve

test: install  ## the whole test suite (PostgreSQL tests need HPO_TEST_POSTGRES_URL)
	bash scripts/ensure_chromium.sh
	PYTHON=$(BIN)/python bash scripts/run_tests.sh $(PYTEST_ARGS)

check: install  ## format, lint, type check
	$(BIN)/ruff format --check .
	$(BIN)/ruff check .
	$(BIN)/mypy

bench: install  ## every benchmark in bench/, each side by side with its peers (see bench/README.md)
	$(BIN)/python -m pip install --quiet -e '.[bench]' -e bench/plugin
	$(BIN)/python -m bench.overhead
	$(BIN)/python -m bench.cold_start
	$(BIN)/python -m bench.scaling
	$(BIN)/python -m bench.time_to_target
	$(BIN)/python -m bench.search_quality
	$(BIN)/python -m bench.pbt
	$(BIN)/python -m bench.dashboard_scale
	$(BIN)/python -m bench.shared_cluster
	$(BIN)/python -m bench.resume
	$(BIN)/python -m bench.gpu_packing

clean:
	rm -rf $(VENV) data .pytest_cache .mypy_cache .ruff_cache
