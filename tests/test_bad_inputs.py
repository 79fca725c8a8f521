"""Bad input, as a hostile or clumsy user types it, across every command: a table.

Each row is one command line. Each must exit 2 with exactly one line on stderr that names the
key, option or file at fault, print no traceback, and create nothing: no MLflow experiment or
run, no Optuna study, no store, folder or file (Hydra's own ``outputs/`` folder of a single run
aside: Hydra makes it before any of our code runs).
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


def _files(folder: Path) -> set[Path]:
    return {p for p in folder.rglob("*") if "outputs" not in p.relative_to(folder).parts}


@pytest.mark.parametrize("command, args, named", BAD_INPUTS,
                         ids=[f"{command} {' '.join(args)}" for command, args, _ in BAD_INPUTS])
def test_bad_input_is_one_line_exit_2_no_traceback_nothing_created(
        run_module, mlflow_client, tmp_path, command, args, named):
    port = free_port()

    def filled(text: str) -> str:
        return text.replace("{tmp}", str(tmp_path)).replace("{port}", str(port))

    optuna_db = tmp_path / "optuna.db"
    storage = [f"hydra.sweeper.storage=sqlite:///{optuna_db}"] if "-m" in args and not any(
        a.startswith("hydra.sweeper.storage") for a in args) else []
    before = _files(tmp_path)
    experiments = len(mlflow_client.search_experiments())
    extra = [*storage, "train.epochs=2"] if command == "sweeper" else []
    proc = run_module(command, *map(filled, args), *extra, env={"MLFLOW_HTTP_REQUEST_MAX_RETRIES": "0"})
    assert proc.returncode == 2, proc.stdout + proc.stderr
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, proc.stderr
    assert all(filled(text) in lines[0] for text in named), lines[0]
    assert "Traceback" not in proc.stdout + proc.stderr
    assert SECRET not in proc.stdout + proc.stderr
    assert _files(tmp_path) == before
    assert len(mlflow_client.search_experiments()) == experiments
    assert mlflow_client.search_runs([e.experiment_id for e in mlflow_client.search_experiments()]) == []
