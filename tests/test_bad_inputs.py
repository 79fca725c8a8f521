"""Bad input, as a hostile or clumsy user types it, across every command: a table.

Each row is one command line. Each must exit 2 with exactly one line on stderr that names the
key, option or file at fault, print no traceback, and create nothing: no MLflow experiment or
run, no Optuna study, no store, folder or file, Hydra's ``outputs/`` and ``multirun/`` included.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.servers import free_port

pytestmark = pytest.mark.slow

SECRET = "s3cret-pw"

# (command, arguments, what the line must contain); {tmp} is the test's folder, {port} a free one.
BAD_INPUTS = [
    ("sweeper", ["+optimizer.lrr=0.1"], ["optimizer.lrr: unknown key", "lr, momentum, nesterov"]),
    ("sweeper", ["+model.widths=[8]"], ["model.widths: unknown key"]),
    ("sweeper", ["model.hidden=[1000000,1000000]"], ["model.hidden=[1000000, 1000000]", "do not fit in memory"]),
    ("sweeper", ["mlflow.tracking_uri={tmp}/folder"], ["mlflow.tracking_uri={tmp}/folder", "sqlite:///{tmp}/folder/mlflow.db"]),
    ("sweeper", [f"mlflow.tracking_uri=http://user:{SECRET}@127.0.0.1:{{port}}"],
     ["mlflow.tracking_uri=http://127.0.0.1:{port}: starting a run failed", "Connection refused"]),
    # A database that refuses the connection: one line within a minute (MLflow alone retries ~100 s).
    ("sweeper", [f"mlflow.tracking_uri=postgresql://u:{SECRET}@127.0.0.1:{{port}}/mlflow"],
     ["mlflow.tracking_uri=postgresql://u@127.0.0.1:{port}/mlflow: reaching the database failed", "Connection refused"]),
    ("sweeper", ["-m", f"mlflow.tracking_uri=postgresql://u:{SECRET}@127.0.0.1:{{port}}/mlflow"],
     ["mlflow.tracking_uri=postgresql://u@127.0.0.1:{port}/mlflow: reaching the database failed"]),
    ("sweeper.report", ["--tracking-uri", f"postgresql://u:{SECRET}@127.0.0.1:{{port}}/mlflow"],
     ["--tracking-uri postgresql://u@127.0.0.1:{port}/mlflow: reaching the database failed"]),
    ("sweeper", ["-m", "hydra.sweeper.n_trials=0"], ["hydra.sweeper.n_trials=0", ">= 1"]),
    ("sweeper", ["-m", "hydra.sweeper.directions=[val_rmse,nope]"], ["hydra.sweeper.directions", "'nope'"]),
    ("sweeper", ["-m", "+hydra.sweeper.params.model.nope=choice(1,2)"], ["hydra.sweeper.params", "model.nope"]),
    ("sweeper", ["-m", "+hydra.sweeper.nope=1"], ["hydra.sweeper.nope: unknown key", "n_trials", "start_from_defaults"]),
    ("sweeper", ["-m", "mlflow.tracking_uri={tmp}/folder"], ["mlflow.tracking_uri={tmp}/folder"]),
    ("sweeper", ["-m", f"hydra.sweeper.storage=postgresql+psycopg2://u:{SECRET}@127.0.0.1:{{port}}/optuna"],
     ["hydra.sweeper.storage=postgresql+psycopg2://u@127.0.0.1:{port}/optuna", "Connection refused"]),
    ("sweeper", ["data=digits", "objective=val_rmse"], ["objective: 'val_rmse' is a regression metric", "val_log_loss"]),
    ("sweeper", ["data=penguins_species", "model.output_activation=identity"],
     ["model.output_activation: 'identity' does not fit data.task=classification", "softmax"]),
    ("sweeper", ["-m", "data=digits", "objective=val_r2"], ["objective: 'val_r2' is a regression metric"]),
    ("sweeper", ["data.task=classification"], ["data.target: column 'Price' has 798 distinct values", "data.task=regression"]),
    # Numbers too large for the network (issue 26): refused up front, in a run and in a sweep.
    ("sweeper", ["data=csv", "data.path={tmp}/huge.csv", "data.target=y"],
     ["column 'a' has 1 out-of-range (beyond ±1e+100) value(s) (first: 1e+308 in row 2)"]),
    ("sweeper", ["-m", "data=csv", "data.path={tmp}/huge.csv", "data.target=y"], ["target column 'y'", "1e+150 in row 3"]),
    ("sweeper", ["data=csv", "data.path={tmp}/long_cell.csv", "data.target=y"], ["column 'a' has 1 non-numeric value(s) (first: 'xxxxx", "x… in row 2)"]),
    ("sweeper", ["data=csv", "data.path={tmp}/long_field.csv", "data.target=y"],
     ["data.path: file '{tmp}/long_field.csv' is not a readable CSV: field larger than field limit"]),
    ("sweeper", ["-m", "hydra.sweeper.register_model=a/b:c"], ["hydra.sweeper.register_model=a/b:c", "'/' or ':'"]),
    ("sweeper", ["-m", "optimizer.lr=tag(lgo,interval(0.001,0.1))"], ["optimizer.lr: unknown tag 'lgo'; allowed: log"]),
    ("sweeper", ["-m", "hydra.sweeper.direction=minimize", "hydra.sweeper.directions=[val_rmse,val_mae]"],
     ["hydra.sweeper.direction=minimize and hydra.sweeper.directions: set one"]),
    ("sweeper", ["-m", "hydra.sweeper.storage=/proc/nope/optuna.log"],
     ["hydra.sweeper.storage=/proc/nope/optuna.log: cannot create its folder /proc/nope"]),
    ("sweeper.rerun", ["abc", "--rtol", "-1"], ["error: argument --rtol: -1.0 is not a tolerance"]),
    ("sweeper.rerun", [], ["error: the following arguments are required: RUN_ID"]),
    ("sweeper.report", ["--top", "0"], ["error: argument --top: 0 is below 1"]),
    ("sweeper.predict", ["abc", "{tmp}/rows.csv", "-o", ""], ["error: argument --output/-o: the path is empty"]),
    ("sweeper.rerun", ["abc", "--tracking-uri", "bogus://x"], ["--tracking-uri bogus://x: cannot read it"]),
    ("sweeper.rerun", ["abc", "--tracking-uri", "sqlite:///{tmp}/no/such/dir/x.db"],
     ["--tracking-uri sqlite:///{tmp}/no/such/dir/x.db: no MLflow store there"]),
    ("sweeper.rerun", ["abc", "--tracking-uri", "{tmp}/folder"], ["--tracking-uri {tmp}/folder: a folder is"]),
    ("sweeper.report", ["--out", "/proc/nope"], ["--out /proc/nope: cannot write /proc"]),
    ("sweeper.report", ["--out", "{tmp}/mlruns/mlflow.db/report"], ["cannot write {tmp}/mlruns/mlflow.db: not a folder"]),
    ("sweeper.report", ["--tracking-uri", "sqlite:///{tmp}/none.db"], ["no MLflow store there"]),
    ("sweeper.predict", ["abc", "{tmp}/rows.csv", "--tracking-uri", "sqlite:///{tmp}/none.db"],
     ["no MLflow store there"]),
]


#: CSV files the table's rows read from {tmp}: a feature of 1e308 (row 2), a target of 1e150
#: (row 3), a text cell of 100,000 characters in a numeric column (row 2), one of a million (more
#: than Python's csv reads).
CSVS = {
    "huge.csv": "a,b,y\n1,2,3\n1e308,3,4\n2,3,1e150\n" + "".join(f"{i},{i % 7},{i * 3}\n" for i in range(40)),
    "long_cell.csv": "a,y\n1,2\n" + "x" * 100_000 + ",3\n" + "".join(f"{i},{i * 2}\n" for i in range(40)),
    "long_field.csv": "a,y\n1,2\n" + "x" * 1_000_000 + ",3\n",
}


def _files(folder: Path) -> set[Path]:
    return set(folder.rglob("*"))


@pytest.mark.parametrize("command, args, named", BAD_INPUTS,
                         ids=[f"{command} {' '.join(args)}" for command, args, _ in BAD_INPUTS])
def test_bad_input_is_one_line_exit_2_no_traceback_nothing_created(
        run_module, mlflow_client, tmp_path, command, args, named):
    port = free_port()

    def filled(text: str) -> str:
        return text.replace("{tmp}", str(tmp_path)).replace("{port}", str(port))

    for name, text in CSVS.items():
        (tmp_path / name).write_text(text)
    optuna_db = tmp_path / "optuna.db"
    storage = [f"hydra.sweeper.storage=sqlite:///{optuna_db}"] if "-m" in args and not any(
        a.startswith("hydra.sweeper.storage") for a in args) else []
    before = _files(tmp_path)
    experiments = len(mlflow_client.search_experiments())
    extra = [*storage, "train.epochs=2"] if command == "sweeper" else []
    # Each answers within a minute, however slow the machine: no store's retries stand between.
    proc = run_module(command, *map(filled, args), *extra, env={"MLFLOW_HTTP_REQUEST_MAX_RETRIES": "0"}, timeout=60)
    assert proc.returncode == 2, proc.stdout + proc.stderr
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, proc.stderr
    assert all(filled(text) in lines[0] for text in named), lines[0]
    assert "Traceback" not in proc.stdout + proc.stderr
    assert SECRET not in proc.stdout + proc.stderr
    assert len(lines[0]) < 1000, lines[0][:1000]
    assert not (tmp_path / "work" / "outputs").exists() and not (tmp_path / "work" / "multirun").exists()
    assert _files(tmp_path) == before
    assert len(mlflow_client.search_experiments()) == experiments
    assert mlflow_client.search_runs([e.experiment_id for e in mlflow_client.search_experiments()]) == []


#: ``sweeper.predict`` on a trained model: (arguments after MODEL, what the line must contain).
PREDICT_REFUSALS = [
    (["{tmp}/train.csv", "-o", "{tmp}/no/dir/x.csv"],
     ["--output {tmp}/no/dir/x.csv: cannot be written", "non-existent directory"]),
    (["{tmp}/feature_far.csv"], ["INPUT.csv {tmp}/feature_far.csv: column 'a'", "1e+99 in row 2"]),
    (["{tmp}/target_huge.csv"], ["INPUT.csv {tmp}/target_huge.csv: target column 'y'", "1e+308 in row 1"]),
    (["{tmp}/none.csv"], ["INPUT.csv: file '{tmp}/none.csv' does not exist"]),
]


def test_predict_bad_input_names_the_input_or_output_exit_2(run_module, mlflow_client, tmp_path):
    """Rows a model cannot predict without overflow (a feature 10^6 training σ out, a target
    beyond ±1e100), an output that cannot be written, an input that is not there: one line
    naming INPUT.csv or --output, exit 2, nothing written."""
    (tmp_path / "train.csv").write_text("a,y\n" + "".join(f"{i},{2 * i + 1}\n" for i in range(40)))
    (tmp_path / "feature_far.csv").write_text("a,y\n1,3\n1e99,3\n")
    (tmp_path / "target_huge.csv").write_text("a,y\n1,1e308\n")
    trained = run_module("sweeper", "data=csv", f"data.path={tmp_path / 'train.csv'}", "data.target=y",
                         "train.epochs=2")
    assert trained.returncode == 0, trained.stderr
    run_id = mlflow_client.search_runs([e.experiment_id for e in mlflow_client.search_experiments()])[0].info.run_id
    before = _files(tmp_path)
    for args, named in PREDICT_REFUSALS:
        filled = [text.replace("{tmp}", str(tmp_path)) for text in args]
        proc = run_module("sweeper.predict", run_id, *filled)
        lines = [line for line in proc.stderr.splitlines() if line.strip()]
        assert proc.returncode == 2 and len(lines) == 1, proc.stdout + proc.stderr
        assert all(text.replace("{tmp}", str(tmp_path)) in lines[0] for text in named), lines[0]
        assert "Traceback" not in proc.stderr
    assert _files(tmp_path) == before


def test_a_storage_pool_that_lost_its_server_is_named_and_said_to_stop_answering():
    """SQLAlchemy's InvalidatePoolError (a PostgreSQL stopped mid-sweep) says only "()"."""
    from sqlalchemy.exc import InvalidatePoolError

    from sweeper.tracking.store import store_error

    line = str(store_error("hydra.sweeper.storage", "postgresql+psycopg2://u@db/optuna", "asking a trial",
                           InvalidatePoolError()))
    assert line == ("hydra.sweeper.storage=postgresql+psycopg2://u@db/optuna: asking a trial failed: "
                    "the store stopped answering (InvalidatePoolError)")


def test_two_sweeps_started_in_one_second_get_apart_default_sweep_dirs():
    """The default ``hydra.sweep.dir`` (conf/config.yaml) keeps concurrent sweeps' ``.hydra``
    files apart: two compositions a moment apart resolve it differently."""
    from hydra import compose, initialize_config_dir

    from sweeper.app import CONFIG_DIR

    with initialize_config_dir(config_dir=str(CONFIG_DIR), version_base="1.3"):
        first, second = (str(compose("config", return_hydra_config=True).hydra.sweep.dir) for _ in range(2))
    assert first.startswith("multirun/") and first != second
