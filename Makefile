# Every target builds its own environment from pyproject.toml on first use.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: test check test-lowest sweep run ui bench clean

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[test]'
	touch $(STAMP)

# Most tests wait on subprocesses (python -m sweeper, servers): two workers keep two cores busy.
# --dist loadfile keeps a file's tests, and its module fixtures (PostgreSQL, an MLflow server),
# on one worker. TEST_JOBS=0 runs in one process.
TEST_JOBS ?= 2
XDIST = $(if $(filter 0,$(TEST_JOBS)),,-n $(TEST_JOBS) --dist loadfile)

test: $(STAMP)
	$(BIN)/python -m pytest -q $(XDIST) $(PYTEST_ARGS)

# The fast tier for the inner loop (~1 min): unit and contract tests, no subprocess sweeps, runs
# or servers (those are marked slow: tests/conftest.py marks every test that starts one).
check: $(STAMP)
	$(BIN)/python -m pytest -q $(XDIST) -m "not slow" $(PYTEST_ARGS)

# The suite against the lowest versions pyproject.toml allows (.ci/lowest.txt), in .venv-lowest.
test-lowest:
	test -x .venv-lowest/bin/python || $(PYTHON) -m venv .venv-lowest
	.venv-lowest/bin/python -m pip install --quiet -e '.[test]' -c .ci/lowest.txt
	.venv-lowest/bin/python -m pytest -q $(XDIST) $(PYTEST_ARGS)

sweep: $(STAMP)
	$(BIN)/python -m sweeper -m

run: $(STAMP)
	$(BIN)/python -m sweeper

ui: $(STAMP)
	$(BIN)/mlflow ui --backend-store-uri sqlite:///mlruns/mlflow.db

# The benchmarks' peers (scikit-learn, PyTorch's CPU build, the peer Hydra sweeper plugin) are
# installed here, never by a test: `make test` reaches no package index.
BENCH_STAMP := $(VENV)/.bench-installed
$(BENCH_STAMP): $(STAMP)
	$(BIN)/python -m pip install --quiet -e '.[test,bench]'
	$(BIN)/python benchmarks/sweep_overhead.py --install-peers
	touch $(BENCH_STAMP)

# The benchmarks' smoke tests against the peers, then the epoch-speed table.
bench: $(BENCH_STAMP)
	$(BIN)/python -m pytest -q --benchmarks -m benchmark
	$(BIN)/python benchmarks/epoch_speed.py

clean:
	rm -rf $(VENV) .venv-lowest mlruns multirun outputs reports *.egg-info
