# aisre: two commands on a fresh clone -- `make demo` and `make test`.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
PYTEST_ARGS ?=

.PHONY: install install-dev demo test test-all lab app bench clean

# The stamps make `make install` idempotent: pip runs again only when pyproject.toml changed.
$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

$(VENV)/.installed: pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e .
	$(BIN)/python -m ipykernel install --sys-prefix --name python3 >/dev/null
	touch $@

$(VENV)/.installed-dev: pyproject.toml $(VENV)/.installed
	$(BIN)/python -m pip install --quiet -e '.[dev,postgres,app,baselines]'
	touch $@

install: $(VENV)/.installed

install-dev: $(VENV)/.installed-dev

demo: install
	$(BIN)/aisre demo

test: install-dev
	$(BIN)/python -m pytest $(PYTEST_ARGS)

test-all: install-dev
	$(BIN)/python -m pytest -m "slow or not slow" $(PYTEST_ARGS)

lab: install-dev
	$(BIN)/jupyter lab notebooks/

# CASE=path/to/case serves that case; without it the page simulates the default scenario.
app: install-dev
	AISRE_APP_CASE=$(if $(CASE),$(abspath $(CASE)),) $(BIN)/voila --Voila.ip=127.0.0.1 --port=8866 --no-browser notebooks/app.ipynb

bench: install-dev
	for f in benchmarks/*.py; do echo "== $$f"; $(BIN)/python $$f || exit 1; done

clean:
	rm -rf $(VENV) reports .pytest_cache
