# Every target builds its own environment from pyproject.toml on first use.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: test test-lowest sweep run ui bench clean

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[test]'
	touch $(STAMP)

test: $(STAMP)
	$(BIN)/python -m pytest -q $(PYTEST_ARGS)

# The suite against the lowest versions pyproject.toml allows (.ci/lowest.txt), in .venv-lowest.
test-lowest:
	test -x .venv-lowest/bin/python || $(PYTHON) -m venv .venv-lowest
	.venv-lowest/bin/python -m pip install --quiet -e '.[test]' -c .ci/lowest.txt
	.venv-lowest/bin/python -m pytest -q $(PYTEST_ARGS)

sweep: $(STAMP)
	$(BIN)/python -m sweeper -m

run: $(STAMP)
	$(BIN)/python -m sweeper

ui: $(STAMP)
	$(BIN)/mlflow ui --backend-store-uri sqlite:///mlruns/mlflow.db

bench: $(STAMP)
	$(BIN)/python benchmarks/epoch_speed.py

clean:
	rm -rf $(VENV) .venv-lowest mlruns multirun outputs reports *.egg-info
