"""Shared fixtures: throw-away MLflow and Optuna stores and a runner for the real CLI.

Every test that trains goes through ``python -m sweeper`` (or another ``python -m`` entry point)
in a process of its own, as a user would, against SQLite files under pytest's ``tmp_path``;
nothing is written to the repository's own ``mlruns/``. ``run_module`` forks those processes
from a zygote that imported the third-party libraries once (``tests/zygote.py``):
``SWEEPER_TEST_FRESH_PROCESSES=1`` starts each in a fresh interpreter instead.
"""

from __future__ import annotations

import shutil
import signal
import subprocess
from pathlib import Path
from typing import Callable

import pytest

from tests.components import missing_summary
from tests.zygote import Zygote, command_env, shared

# A shell's background job (`make test &` in a script, a CI step run without job control)
# starts with SIGINT ignored, and every process it starts inherits that: the sweeps the Ctrl-C
# tests interrupt would train on. Their Ctrl-C comes from a terminal; so does the tests' here.
if signal.getsignal(signal.SIGINT) == signal.SIG_IGN:
    signal.signal(signal.SIGINT, signal.default_int_handler)


@pytest.fixture(scope="session")
def empty_mlflow_db(tmp_path_factory) -> Path:
    """An MLflow SQLite database with its schema created once per session.

    Creating the schema (MLflow's migrations) takes seconds; copying the file takes none.
    """
    from mlflow import MlflowClient

    path = tmp_path_factory.mktemp("mlflow-template") / "mlflow.db"
    MlflowClient(f"sqlite:///{path}").search_experiments()
    return path


@pytest.fixture(scope="session")
def empty_optuna_db(tmp_path_factory) -> Path:
    """An Optuna SQLite storage with its tables created once per session: copy it to start a
    fresh ``sqlite:///`` storage without Optuna's migrations."""
    import optuna

    path = tmp_path_factory.mktemp("optuna-template") / "optuna.db"
    storage = optuna.storages.RDBStorage(f"sqlite:///{path}")
    storage.remove_session()
    storage.engine.dispose()
    return path


@pytest.fixture
def mlflow_uri(tmp_path: Path, empty_mlflow_db: Path) -> str:
    """A fresh, empty MLflow tracking URI, ``sqlite:////<tmp>/mlruns/mlflow.db``.

    The database already has MLflow's schema (copied from a session template), so neither the
    test nor its subprocesses pay for migrations. Artifacts of experiments created through
    ``sweeper.tracking.get_or_create_experiment`` land in ``<tmp>/mlruns/artifacts``.
    """
    folder = tmp_path / "mlruns"
    folder.mkdir(exist_ok=True)
    shutil.copyfile(empty_mlflow_db, folder / "mlflow.db")
    return f"sqlite:///{folder / 'mlflow.db'}"


@pytest.fixture
def optuna_url(tmp_path: Path) -> str:
    """A fresh Optuna storage, the default kind: a journal file ``<tmp>/mlruns/optuna.log``
    (folder created). Read it back with ``tests.stores.load_study``."""
    folder = tmp_path / "mlruns"
    folder.mkdir(exist_ok=True)
    return str(folder / "optuna.log")


@pytest.fixture
def mlflow_client(mlflow_uri: str):
    """An ``mlflow.MlflowClient`` reading the same store as ``mlflow_uri``."""
    from mlflow import MlflowClient

    return MlflowClient(mlflow_uri)


@pytest.fixture
def workdir(tmp_path: Path) -> Path:
    """The working directory the CLI runs in: Hydra's ``outputs/`` and ``multirun/`` go here."""
    folder = tmp_path / "work"
    folder.mkdir(exist_ok=True)
    return folder


RunModule = Callable[..., subprocess.CompletedProcess]


@pytest.fixture(scope="session")
def zygote() -> Zygote:
    """This test worker's :class:`tests.zygote.Zygote` (``tests.zygote.shared``)."""
    return shared()


@pytest.fixture
def run_module(mlflow_uri: str, workdir: Path, zygote: Zygote) -> RunModule:
    """Run ``python -m MODULE ARGS...`` in a process of its own (forked from the ``zygote``) and
    return the CompletedProcess.

    ``run_module("sweeper.rerun", run_id, "--check")``. The process is ``sys.executable``'s,
    runs in ``workdir`` (so Hydra's output folders go to tmp), has ``MLFLOW_TRACKING_URI`` set to
    ``mlflow_uri`` and ``HYDRA_FULL_ERROR`` unset (users see the short error), and captures
    stdout/stderr as text. It never raises on a non-zero exit: assert on ``.returncode``.

    Keyword options: ``env`` (dict merged over the environment; a value of None removes the
    variable), ``cwd`` (another working directory), ``timeout`` (seconds, default 600).
    """

    def run(module: str, *args: str, env: dict[str, str | None] | None = None,
            cwd: Path | str | None = None, timeout: float = 600) -> subprocess.CompletedProcess:
        full_env = command_env({"MLFLOW_TRACKING_URI": mlflow_uri, **(env or {})})
        return zygote.run(["-m", module, *args], full_env, cwd or workdir, timeout)

    return run


@pytest.fixture
def run_cli(run_module: RunModule) -> RunModule:
    """Run ``python -m sweeper ARGS...`` (Hydra overrides, ``-m``, ...) like ``run_module``.

    ``proc = run_cli("train.epochs=30", "model.activation=tanh")``; same keyword options as
    ``run_module``. Pass ``f"hydra.sweeper.storage={optuna_url}"`` for sweeps.
    """

    def run(*args: str, **options) -> subprocess.CompletedProcess:
        return run_module("sweeper", *args, **options)

    return run


@pytest.fixture
def compose():
    """Compose ``conf/config.yaml`` in-process with Hydra's compose API: ``compose("seed=1")``.

    Returns the task config (no ``hydra`` node), as ``python -m sweeper`` would pass it to
    ``sweeper.app.run``, for tests that need no subprocess. Config errors raise as exceptions.
    """
    from hydra import compose as hydra_compose
    from hydra import initialize_config_dir

    from sweeper.app import CONFIG_DIR

    def run(*overrides: str):
        with initialize_config_dir(config_dir=str(CONFIG_DIR), version_base="1.3"):
            return hydra_compose(config_name="config", overrides=list(overrides))

    return run


# --- how the suite runs ------------------------------------------------------------------------


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption("--benchmarks", action="store_true",
                     help="also run the tests marked benchmark (they need what `make bench` installs)")


#: Fixtures that start a subprocess run or sweep, or a server: a test using one is ``slow``, out of
#: ``make check``'s fast tier, whether or not it says so itself.
_SLOW_FIXTURES = frozenset({"run_cli", "run_module", "postgres", "postgres_url", "database", "mlflow_server",
                            "slurm", "server", "toy"})


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Mark ``slow`` every test that starts a process through a fixture (``_SLOW_FIXTURES``).
    Tests marked ``benchmark`` run only with ``--benchmarks`` (``make bench``): they need the
    peers that ``make bench`` installs, and the default suite reaches no package index."""
    for item in items:
        if _SLOW_FIXTURES & set(getattr(item, "fixturenames", ())):
            item.add_marker(pytest.mark.slow)
    if config.getoption("--benchmarks"):
        return
    dropped = [item for item in items if item.get_closest_marker("benchmark")]
    if dropped:
        config.hook.pytest_deselected(items=dropped)
        items[:] = [item for item in items if not item.get_closest_marker("benchmark")]


_MISSING_LINE = pytest.StashKey[str]()


def pytest_terminal_summary(terminalreporter, exitstatus: int, config: pytest.Config) -> None:
    """Find the tests skipped for a missing real component (``pytest_unconfigure`` prints the line)."""
    reasons = []
    for report in terminalreporter.stats.get("skipped", []):
        if isinstance(report.longrepr, (tuple, list)):  # (file, line, reason); a list once it crossed xdist
            reasons.append((report.nodeid.split("::")[0], str(report.longrepr[2]).removeprefix("Skipped: ")))
    line = missing_summary(reasons)
    if line is not None:
        config.stash[_MISSING_LINE] = line


def pytest_unconfigure(config: pytest.Config) -> None:
    """The run's last line: each real component not found, its skipped tests, how to install it."""
    line = config.stash.get(_MISSING_LINE, None)
    reporter = config.pluginmanager.get_plugin("terminalreporter")
    if line is not None and reporter is not None:
        reporter.write_line(line, yellow=True, bold=True)
